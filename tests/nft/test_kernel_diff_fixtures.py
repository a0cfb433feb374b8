"""The differential of test_kernel_diff over every ruleset of upstream's nftables fixtures: the
expected dumps (bad_ips, every sync_repeated step) and the tables kplab generates for the trace
fixtures (IPv4 and IPv6), probed at every destination their maps name and with each fixture
trace's packet whose source is not the node's own."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from kplab.kubeproxy.nftmode.api import generate_nft
from kplab.lab.netns import Lab
from kplab.netfilter.nft.compile import compile_nft
from kplab.netfilter.nft.load import parse_nft
from kubeproxy.fixtures import NFT_DATA, cases

from .kernlab import NftNode
from .test_kernel_diff import NODE_IPS, Probe, derived_probes, differences

PROTOS = {"tcp": 6, "udp": 17}


def rulesets() -> list[tuple[str, str, list[Probe]]]:
    """(name, ruleset text, the fixture's own probes)."""
    out: list[tuple[str, str, list[Probe]]] = [
        (p.relative_to(NFT_DATA).as_posix(), p.read_text(), [])
        for p in sorted(NFT_DATA.glob("*/expected*.nft"))
    ]
    for case in cases(NFT_DATA):
        path = case.file("traces", "yaml")
        if path is None:
            continue
        cluster, config, env = case.load()
        probes: list[Probe] = []
        for t in yaml.safe_load(path.read_text()):
            src, dst = ipaddress.ip_address(t["src"]), ipaddress.ip_address(t["dst"])
            if int(src) not in NODE_IPS and t.get("proto", "tcp") in PROTOS:
                probes.append((src.version, int(src), int(dst), PROTOS[t.get("proto", "tcp")], t["dport"]))
        out.append((case.id, generate_nft(cluster, config=config, env=env).text, probes))
    return out


@pytest.mark.kernel
def test_every_fixture_ruleset_in_the_kernel(lab: Lab) -> None:
    found = rulesets()
    assert len(found) == 25 and sum(len(probes) for _, _, probes in found) > 100
    bad: list[str] = []
    for index, (name, text, own) in enumerate(found):
        rs = parse_nft(text, name)
        node = NftNode(lab, text, tag=f"f{index}")
        try:
            bad += [
                f"{name}: {d}" for d in differences(node, compile_nft(rs), own + list(derived_probes(rs)))
            ]
        finally:
            node.close()
    assert bad == []
