"""Every packet-flow trace of upstream's nftables fixtures (tests/data/kube-proxy-nftables/*/traces*.yaml)
through `kplab trace --nft` on kube-proxy's generated tables: as upstream's tracer (--stateless) and
statefully with every numgen branch, on the `nft -f` text, on what the real nft lists back as text
and as JSON (kernel test), and on the JSON kplab renders for `kplab rules --format json`."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kplab.kubeproxy.nftmode.api import generate_nft
from kplab.lab.netns import Lab
from kplab.netfilter.nft.compile import NftEngine, compile_nft
from kplab.netfilter.nft.load import parse_nft
from kplab.netfilter.nft.tracer import trace_nft, trace_nft_stateless
from kubeproxy.fixtures import NFT_DATA, Case, cases

from .helpers import probe

TRACED = [c for c in cases(NFT_DATA) if c.file("traces", "yaml") is not None]


def traces(case: Case) -> list[dict[str, Any]]:
    path = case.file("traces", "yaml")
    assert path is not None
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def node_ips(case: Case) -> tuple[str, ...]:
    node = yaml.safe_load((NFT_DATA / case.folder / "node.yaml").read_text())
    return tuple(a["address"] for a in node["status"]["addresses"] if a["type"] != "Hostname")


def generated(case: Case) -> str:
    cluster, config, env = case.load()
    return generate_nft(cluster, config=config, env=env).text


def failures(engine: NftEngine, case: Case) -> list[str]:
    """Upstream's expectations, as its tracer reads them (--stateless) and as the stateful walk
    gives them (every branch; the DNAT targets and DROP/REJECT, in order)."""
    out = []
    for t in traces(case):
        p = probe(t["src"], t["dst"], t["dport"], t.get("proto", "tcp"), node_ips(case))
        stateless = trace_nft_stateless(engine, p)
        got = [o.dnat or o.verdict for o in stateless.outcomes]
        stateful = trace_nft(engine, p, all_branches=True)
        full = [o.dnat or o.verdict for o in stateful.outcomes if o.dnat or o.verdict != "ACCEPT"]
        want = (t["expect"], t["masquerade"])
        if (got, stateless.masquerade) != want or (full, stateful.masquerade) != want:
            out.append(f"{t['name']}: stateless {got} {stateless.masquerade}, stateful {full}, want {want}")
    return out


def test_every_trace_fixture_is_here() -> None:
    assert {c.folder for c in TRACED} == {
        "cluster_ip_general", "etp_cluster", "etp_local", "internal_external_masquerade",
        "load_balancer", "no_endpoints_reject", "nodeports",
    }  # fmt: skip
    assert sum(len(traces(c)) for c in TRACED) == 167


@pytest.mark.parametrize("case", TRACED, ids=lambda c: c.id)
def test_traces_on_the_generated_text(case: Case) -> None:
    assert failures(compile_nft(parse_nft(generated(case), f"{case.id}.nft")), case) == []


@pytest.mark.parametrize("case", TRACED, ids=lambda c: c.id)
def test_traces_on_kplabs_json_rendering(case: Case) -> None:
    cluster, config, env = case.load()
    doc = json.dumps(generate_nft(cluster, config=config, env=env).json())
    assert failures(compile_nft(parse_nft(doc, f"{case.id}.json")), case) == []


@pytest.mark.kernel
def test_traces_on_what_the_real_nft_lists(lab: Lab, tmp_path: Path) -> None:
    """Each generated table loaded by the real `nft -f`, listed back by `nft list ruleset` and
    `nft -j list ruleset`: both listings give every trace."""
    bad: list[str] = []
    for index, case in enumerate(TRACED):
        ns = lab.netns(f"fx{index}")
        ns.run(["nft", "-f", "-"], input=generated(case))
        for form, args in (("list", ["nft", "list", "ruleset"]), ("json", ["nft", "-j", "list", "ruleset"])):
            listed = ns.run(args).stdout
            (tmp_path / f"{index}.{form}").write_text(listed)
            engine = compile_nft(parse_nft(listed, f"{case.id}.{form}"))
            bad += [f"{case.id} ({form}): {f}" for f in failures(engine, case)]
    assert bad == []
    assert int(ipaddress.ip_address("2001:db8::1")) > 0
