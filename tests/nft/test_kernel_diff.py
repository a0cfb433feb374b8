"""The nft engine against the real kernel: kube-proxy's rulesets loaded with the real nft into a lab
node, crafted first packets sent through it, and the kernel's verdict and DNAT target (read from
`nft monitor trace`, see kernlab) must be one of `kplab trace --nft --all-branches`' outcomes; over
repeated packets the kernel reaches every outcome kplab lists (numgen is uniform, so a missed
endpoint after 64 packets would mean a wrong branch, not bad luck: p < 2^-60)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kplab.lab.netns import Lab
from kplab.netfilter.nft.compile import NftEngine, compile_nft
from kplab.netfilter.nft.load import read_nft
from kplab.netfilter.nft.model import Interval, NftRuleset
from kplab.netfilter.nft.tracer import NftProbe, fmt_endpoint, trace_nft
from kplab.packet import fmt_ip, ip

from .helpers import OVERALL
from .kernlab import NODE_ADDRS, NftNode
from .test_trace import OVERALL_FLOWS

NODE_IPS = tuple(ip(a.split("/")[0]) for a in NODE_ADDRS)
SOURCES = ("10.0.0.2", "203.0.113.5", "203.0.113.200", "10.180.0.3")
MAX_PACKETS = 64


def derived_probes(rs: NftRuleset) -> Iterator[tuple[int, int, int, int]]:
    """(src, dst, proto, dport) for every destination kube-proxy's maps name, a wrong port and an
    unallocated address of each ClusterIP, and a destination no rule names."""
    table = rs.table("ip", "kube-proxy")
    assert table is not None
    dests: set[tuple[int, int, int]] = {(ip("192.168.0.2"), 6, 22), (ip("8.8.8.8"), 17, 53)}
    node_ports = (
        [e.key[0] for e in table.sets["nodeport-ips"].elements] if "nodeport-ips" in table.sets else []
    )
    for name in ("service-ips", "no-endpoint-services", "firewall-ips"):
        for elem in table.sets[name].elements if name in table.sets else []:
            dst, proto, port = elem.key
            assert isinstance(dst, int) and isinstance(proto, int) and isinstance(port, int)
            dests.add((dst, proto, port))
            dests.add((dst, proto, port + 1))
    for name in ("service-nodeports", "no-endpoint-nodeports"):
        for elem in table.sets[name].elements if name in table.sets else []:
            proto, port = elem.key
            assert isinstance(proto, int) and isinstance(port, int)
            dests.update(
                (addr, proto, port) for addr in [*node_ports, ip("192.168.1.2")] if isinstance(addr, int)
            )
    for elem in table.sets["cluster-ips"].elements:
        dst = elem.key[0]
        assert isinstance(dst, int) and not isinstance(dst, Interval)
        dests.add((dst, 17, 80))
        dests.add(((dst & 0xFFFF0000) | 0xFFFE, 6, 80))  # unallocated in the same /16
    for src in SOURCES:
        for dst, proto, port in sorted(dests):
            if proto in (6, 17):  # the raw sender crafts TCP and UDP
                yield ip(src), dst, proto, port


def kplab_outcomes(engine: NftEngine, src: int, dst: int, proto: int, dport: int) -> set[tuple[str, str]]:
    probe = NftProbe(src, dst, proto, 40000, dport, 4, NODE_IPS, "NEW", "eth0")
    report = trace_nft(engine, probe, all_branches=True)
    original = fmt_endpoint(dst, dport, 4)
    return {
        (o.verdict or "ACCEPT", (o.dnat or original) if o.verdict == "ACCEPT" else "")
        for o in report.outcomes
    }


def differences(node: NftNode, engine: NftEngine, probes: list[tuple[int, int, int, int]]) -> list[str]:
    out = []
    for src, dst, proto, dport in probes:
        want = kplab_outcomes(engine, src, dst, proto, dport)
        seen: set[tuple[str, str]] = set()
        for _ in range(MAX_PACKETS if len(want) > 1 else 1):
            got = node.probe(src, dst, proto, dport)
            seen.add((got.verdict, got.dst))
            if seen - want or seen == want:
                break
        if seen != want:
            out.append(
                f"{fmt_ip(src)} -> {fmt_ip(dst)}:{dport}/{proto}: kernel {sorted(seen)}, kplab {sorted(want)}"
            )
    return out


@pytest.mark.kernel
def test_overall_current_in_the_kernel(lab: Lab) -> None:
    rs = read_nft(str(OVERALL["nft"]))
    engine = compile_nft(rs)
    probes = [(ip(s), ip(d), {"tcp": 6, "udp": 17}[p], port) for s, d, port, p, _, _ in OVERALL_FLOWS]
    probes += list(derived_probes(rs))
    assert len(probes) > 100
    node = NftNode(lab, OVERALL["nft"].read_text())
    try:
        assert differences(node, engine, probes) == []
    finally:
        node.close()
