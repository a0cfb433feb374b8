"""The nft engine against the real kernel: kube-proxy's rulesets loaded with the real nft into a lab
node, crafted first packets sent through it, and the kernel's verdict and DNAT target (read from
`nft monitor trace`, see kernlab) must be one of `kplab trace --nft --all-branches`' outcomes; over
repeated packets the kernel reaches every outcome kplab lists (numgen is uniform, so a missed
endpoint after 64 packets would mean a wrong branch, not bad luck: p < 2^-60)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from kplab.lab.netns import Lab
from kplab.netfilter.nft.compile import NftEngine, compile_nft
from kplab.netfilter.nft.load import read_nft
from kplab.netfilter.nft.model import NftRuleset
from kplab.netfilter.nft.tracer import fmt_endpoint, trace_nft
from kplab.netfilter.tracer import Probe as TraceProbe

from .helpers import OVERALL
from .kernlab import NODE_ADDRS, NftNode
from .test_trace import OVERALL_FLOWS

NODE_IPS = tuple(int(ipaddress.ip_address(a.split("/")[0])) for a in NODE_ADDRS)
SOURCES = {
    4: ("10.0.0.2", "203.0.113.5", "203.0.113.200", "10.180.0.3"),
    6: ("fd00:10::2", "2600:5200::1", "fd00:10:180::1"),
}
UNUSED = {4: ("192.168.0.2", "8.8.8.8"), 6: ("2001:db8::1", "2001:4860::8888")}
MAX_PACKETS = 64
Probe = tuple[int, int, int, int, int]  # family, src, dst, proto, dport


def _addr(text: str) -> int:
    return int(ipaddress.ip_address(text))


def derived_probes(rs: NftRuleset) -> Iterator[Probe]:
    """Per family kube-proxy wrote a table for: every destination its maps name (and the next port),
    its NodePorts on each node address, each ClusterIP over UDP and an unallocated neighbour, and
    destinations no rule names; TCP and UDP (what the raw sender crafts)."""
    for family, fname in ((4, "ip"), (6, "ip6")):
        table = rs.table(fname, "kube-proxy")
        if table is None:
            continue
        sets = {name: [e.key for e in s.elements] for name, s in table.sets.items()}
        unused_local, unused_remote = (_addr(a) for a in UNUSED[family])
        dests: set[tuple[int, int, int]] = {(unused_local, 6, 22), (unused_remote, 17, 53)}
        for name in ("service-ips", "no-endpoint-services", "firewall-ips"):
            for dst, proto, port in sets.get(name, []):  # type: ignore[misc]
                dests.update({(dst, proto, port), (dst, proto, port + 1)})  # type: ignore[operator]
        node_ports = [k[0] for k in sets.get("nodeport-ips", [])] + [
            n for n in NODE_IPS if (n < 1 << 32) == (family == 4)
        ]
        for name in ("service-nodeports", "no-endpoint-nodeports"):
            for proto, port in sets.get(name, []):  # type: ignore[misc]
                dests.update((addr, proto, port) for addr in node_ports)  # type: ignore[misc]
        for (vip,) in sets.get("cluster-ips", []):  # type: ignore[misc]
            dests.update({(vip, 17, 80), ((vip & ~0xFFFF) | 0xFFFE, 6, 80)})  # type: ignore[operator]
        for src in SOURCES[family]:
            for dst, proto, port in sorted(dests):
                if proto in (6, 17):
                    yield family, _addr(src), dst, proto, port


def kplab_outcomes(
    engine: NftEngine, family: int, src: int, dst: int, proto: int, dport: int
) -> set[tuple[str, str]]:
    probe = TraceProbe(src, dst, proto, 40000, dport, NODE_IPS, "NEW", "eth0", family=family)
    report = trace_nft(engine, probe, all_branches=True)
    original = fmt_endpoint(dst, dport, family)
    return {
        (o.verdict or "ACCEPT", (o.dnat or original) if o.verdict == "ACCEPT" else "")
        for o in report.outcomes
    }


def differences(node: NftNode, engine: NftEngine, probes: list[Probe]) -> list[str]:
    out = []
    for family, src, dst, proto, dport in probes:
        want = kplab_outcomes(engine, family, src, dst, proto, dport)
        seen: set[tuple[str, str]] = set()
        for _ in range(MAX_PACKETS if len(want) > 1 else 1):
            got = node.probe(src, dst, proto, dport, family)
            seen.add((got.verdict, got.dst))
            if seen - want or seen == want:
                break
        if seen != want:
            where = f"{ipaddress.ip_address(src)} -> {fmt_endpoint(dst, dport, family)}/{proto}"
            out.append(f"{where}: kernel {sorted(seen)}, kplab {sorted(want)}")
    return out


@pytest.mark.kernel
def test_overall_current_in_the_kernel(lab: Lab) -> None:
    rs = read_nft(str(OVERALL["nft"]))
    engine = compile_nft(rs)
    probes = [
        (4, _addr(s), _addr(d), {"tcp": 6, "udp": 17}[p], port) for s, d, port, p, _, _ in OVERALL_FLOWS
    ]
    probes += list(derived_probes(rs))
    assert len(probes) > 100
    node = NftNode(lab, OVERALL["nft"].read_text())
    try:
        assert differences(node, engine, probes) == []
    finally:
        node.close()
