"""The nft engine on kube-proxy's overall_current table (every form), stateful and as upstream's
stateless tracer, and its semantics on small rulesets: jump/goto, accept vs drop across tables,
priorities interleaved with iptables' tables, numgen branches, affinity, ct state, sets."""

from __future__ import annotations

import ipaddress

import pytest

from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.iptables_save import parse
from kplab.netfilter.nft.compile import compile_nft
from kplab.netfilter.nft.load import load_nft, parse_nft
from kplab.netfilter.nft.tracer import trace_nft, trace_nft_stateless
from kplab.netfilter.nft.walk import node_walker
from kplab.netfilter.node import NodeNet
from kplab.netfilter.standin import StandInTracker
from kplab.netfilter.state import EngineState, Skb
from kplab.packet import Packet, ip

from .helpers import OVERALL, probe

# (src, dst, dport, proto, outcomes as upstream's tracer lists them, masquerade)
OVERALL_FLOWS = [
    ("10.180.0.2", "172.30.0.41", 80, "tcp", ["10.180.0.1:80"], False),
    ("10.180.0.1", "172.30.0.41", 80, "tcp", ["10.180.0.1:80"], True),  # hairpin
    ("203.0.113.9", "172.30.0.41", 80, "tcp", ["10.180.0.1:80"], True),  # off-cluster source
    ("10.180.0.2", "172.30.0.44", 80, "tcp", ["10.180.0.4:80", "10.180.0.5:80"], False),
    ("10.180.0.2", "172.30.0.41", 443, "tcp", ["REJECT"], False),  # a wrong port of a ClusterIP
    ("10.180.0.2", "172.30.0.41", 80, "udp", ["REJECT"], False),
    ("10.180.0.2", "172.30.0.77", 80, "tcp", ["DROP"], False),  # unallocated ClusterIP
    ("10.180.0.2", "172.30.0.46", 80, "tcp", ["REJECT"], False),  # no endpoints
    ("203.0.113.5", "5.6.7.8", 80, "tcp", ["10.180.0.3:80"], True),  # in the source range
    ("203.0.113.200", "5.6.7.8", 80, "tcp", ["DROP"], False),  # outside it
    ("203.0.113.5", "1.2.3.4", 80, "tcp", ["DROP"], False),  # eTP=Local, no local endpoint
    ("10.0.0.2", "1.2.3.4", 80, "tcp", ["10.180.0.2:80"], False),  # pod traffic short-circuits
    ("203.0.113.5", "192.168.0.2", 3001, "tcp", ["DROP"], False),
    ("203.0.113.5", "192.168.0.2", 3003, "tcp", ["10.180.0.3:80"], True),
    ("203.0.113.5", "192.168.1.2", 3003, "tcp", [], False),  # not a nodeport-ips address
    ("10.180.0.2", "8.8.8.8", 53, "udp", [], False),
]


@pytest.mark.parametrize("form", sorted(OVERALL))
def test_overall_current_flows(form: str) -> None:
    engine = load_nft(str(OVERALL[form]))
    failures = []
    for src, dst, dport, proto, want, masq in OVERALL_FLOWS:
        p = probe(src, dst, dport, proto)
        stateless = trace_nft_stateless(engine, p)
        stateful = trace_nft(engine, p, all_branches=True)
        got = [o.dnat or o.verdict for o in stateless.outcomes]
        full = [o.dnat or o.verdict for o in stateful.outcomes if o.dnat or o.verdict != "ACCEPT"]
        if got != want or full != want or stateless.masquerade != masq or stateful.masquerade != masq:
            failures.append(f"{src}->{dst}:{dport}/{proto}: {got} {full} {stateless.masquerade}")
    assert not failures


def test_numgen_branches_are_uniform_and_a_seeded_run_picks_one() -> None:
    engine = load_nft(str(OVERALL["list"]))
    p = probe("10.180.0.2", "172.30.0.44", 80)
    report = trace_nft(engine, p, all_branches=True)
    assert [(o.dnat, o.probability) for o in report.outcomes] == [
        ("10.180.0.4:80", 0.5),
        ("10.180.0.5:80", 0.5),
    ]
    picked = {trace_nft(engine, p, seed=seed).dnat for seed in range(20)}
    assert picked == {"10.180.0.4:80", "10.180.0.5:80"}
    assert trace_nft(engine, p, seed=3).dnat == trace_nft(engine, p, seed=3).dnat


def test_established_and_invalid_packets_skip_kube_proxys_rules() -> None:
    """`ct state new` guards the filter jumps and nat chains run for new connections only: an
    INVALID packet to a Service with no endpoints is neither rejected nor DNATed."""
    engine = load_nft(str(OVERALL["nft"]))
    for state in ("ESTABLISHED", "INVALID"):
        report = trace_nft(engine, probe("10.180.0.2", "172.30.0.46", 80, ctstate=state))
        assert (report.verdict, report.dnat) == ("ACCEPT", None)


def test_path_names_rules_and_lines() -> None:
    engine = load_nft(str(OVERALL["nft"]))
    report = trace_nft(engine, probe("10.180.0.2", "172.30.0.41", 80))
    lines = [(e.table, e.chain, e.kind, e.text) for e in report.path]
    assert (
        "ip kube-proxy",
        "services",
        "rule",
        "ip daddr . meta l4proto . th dport vmap @service-ips",
    ) in lines
    dnat = next(e for e in report.path if "dnat" in e.text)
    assert dnat.source is not None and dnat.source.line == 45


BASE = """table ip kube-proxy {
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 172.30.0.1 jump svc
\t}
\tchain svc {
\t\tip saddr 10.9.0.0/16 goto fallthrough
\t\tnumgen random mod 3 vmap { 0 : goto ep0, 1 : goto ep1, 2 : goto ep2 }
\t}
\tchain fallthrough {
\t\tip saddr 10.9.9.9 return
\t}
\tchain ep0 {
\t\tmeta l4proto tcp dnat to 10.1.0.1:8080
\t}
\tchain ep1 {
\t\tmeta l4proto tcp dnat to 10.1.0.2:8080
\t}
\tchain ep2 {
\t\tmeta l4proto tcp dnat to 10.1.0.3
\t}
}
"""


def _trace(
    text: str, src: str, dst: str, dport: int, **kw: object
) -> tuple[str, list[tuple[str | None, float]]]:
    engine = compile_nft(parse_nft(text, "t.nft"))
    report = trace_nft(engine, probe(src, dst, dport, node_ips=("192.168.0.2",)), all_branches=True, **kw)  # type: ignore[arg-type]
    return report.verdict, [(o.dnat, round(o.probability, 6)) for o in report.outcomes]


def test_numgen_mod_three_and_a_dnat_without_port() -> None:
    verdict, outcomes = _trace(BASE, "10.0.0.5", "172.30.0.1", 80)
    assert verdict == "ACCEPT"
    assert outcomes == [("10.1.0.1:8080", 0.333333), ("10.1.0.2:8080", 0.333333), ("10.1.0.3:80", 0.333333)]


def test_goto_does_not_come_back() -> None:
    """`goto fallthrough` replaces svc: when fallthrough ends, control returns to svc's caller
    (nat-prerouting), not to svc's numgen rule: no DNAT."""
    assert _trace(BASE, "10.9.0.5", "172.30.0.1", 80) == ("ACCEPT", [(None, 1.0)])
    assert _trace(BASE, "10.9.9.9", "172.30.0.1", 80) == ("ACCEPT", [(None, 1.0)])


OPERATOR = """table inet guard {
\tchain fwd {
\t\ttype filter hook forward priority filter + 10; policy accept;
\t\tct state invalid drop
\t\tip daddr 10.1.0.3 tcp dport 80 counter reject with tcp reset
\t}
}
table ip early {
\tchain fwd {
\t\ttype filter hook forward priority -5; policy accept;
\t\tip daddr 10.1.0.2 accept
\t}
}
"""


def test_accept_ends_one_base_chain_but_drop_and_reject_are_final() -> None:
    engine = compile_nft(parse_nft(BASE + OPERATOR, "t.nft"))
    p = probe("10.0.0.5", "172.30.0.1", 80, node_ips=("192.168.0.2",))
    outcomes = trace_nft(engine, p, all_branches=True).outcomes
    assert [(o.dnat, o.verdict) for o in outcomes] == [
        ("10.1.0.1:8080", "ACCEPT"),
        ("10.1.0.2:8080", "ACCEPT"),  # the early table's accept does not skip guard: nothing there drops it
        ("10.1.0.3:80", "REJECT"),
    ]
    invalid = trace_nft(
        engine, probe("10.0.0.5", "10.1.0.9", 80, node_ips=("192.168.0.2",), ctstate="INVALID")
    )
    assert invalid.verdict == "DROP"
    assert invalid.path[-1].table == "inet guard" and invalid.path[-1].text == "ct state invalid drop"


def test_base_chains_interleave_with_iptables_tables_by_priority() -> None:
    """A `raw`-priority nft chain runs before iptables' raw table, iptables' filter FORWARD (0)
    before an nft chain at 10 and after one at -5."""
    nft = compile_nft(
        parse_nft(
            "table ip a {\n chain pre { type filter hook prerouting priority -310; meta mark set 0x1 }\n"
            " chain f1 { type filter hook forward priority -5; meta mark set meta mark | 0x4 }\n"
            " chain f2 { type filter hook forward priority 10; meta mark 0x7 drop }\n}\n",
            "t.nft",
        )
    )
    ipt = compile_ruleset(
        parse(
            "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m mark --mark 0x1 -j MARK --or-mark 0x2\nCOMMIT\n"
            "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m mark --mark 0x6 -j DROP\nCOMMIT\n",
            "t.rules",
        )
    )
    walk = node_walker(
        nft, ipt, NodeNet.simple([ip("192.168.0.2")]), StandInTracker(), EngineState.seeded(0), traced=True
    )
    result = walk.evaluate(Packet(ip("10.0.0.1"), ip("10.0.0.2"), 6, 1, 80), Skb(in_iface="eth0"), 0)
    assert (result.verdict, result.hook.value) == ("DROP", "FORWARD")
    assert [(e.table, e.chain) for e in result.trace if e.kind == "rule"] == [
        ("ip a", "pre"),
        ("raw", "PREROUTING"),
        ("ip a", "f1"),
        ("ip a", "f2"),
    ]


AFFINITY = """table ip kube-proxy {
\tset affinity-a {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 10s
\t}
\tset affinity-b {
\t\ttype ipv4_addr
\t\tflags dynamic,timeout
\t\ttimeout 10s
\t}
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr 172.30.0.1 tcp dport 80 goto svc
\t}
\tchain svc {
\t\tip saddr @affinity-a goto ep-a
\t\tip saddr @affinity-b goto ep-b
\t\tnumgen random mod 2 vmap { 0 : goto ep-a, 1 : goto ep-b }
\t}
\tchain ep-a {
\t\tupdate @affinity-a { ip saddr }
\t\tmeta l4proto tcp dnat to 10.1.0.1:80
\t}
\tchain ep-b {
\t\tupdate @affinity-b { ip saddr }
\t\tmeta l4proto tcp dnat to 10.1.0.2:80
\t}
}
"""


def test_client_ip_affinity_sticks_until_the_timeout() -> None:
    engine = compile_nft(parse_nft(AFFINITY, "a.nft"))
    state = EngineState.seeded(7)
    walk = node_walker(engine, None, NodeNet.simple([ip("192.168.0.2")]), StandInTracker(), state)

    def connect(src: str, now_s: int) -> int:
        pkt = Packet(ip(src), ip("172.30.0.1"), 6, 40000, 80)
        walk.evaluate(pkt, Skb(in_iface="eth0"), now_s * 1_000_000_000)
        return pkt.dst

    first = connect("10.0.0.5", 0)
    assert {connect("10.0.0.5", t) for t in range(1, 9)} == {first}  # each connection refreshes it
    assert state.dynsets and all(len(m) == 1 for m in state.dynsets.values())
    later = {connect("10.0.0.5", 100 + 20 * k) for k in range(30)}  # 20 s apart: expired every time
    assert later == {ip("10.1.0.1"), ip("10.1.0.2")}


SETS = """table ip t {
\tmap ports {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tflags interval
\t\telements = { 10.0.0.0/24 . tcp . 1000-2000 : drop, 10.0.1.1 . udp . 53 : accept }
\t}
\tchain in {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname "lo" accept
\t\tip saddr . meta l4proto . th dport vmap @ports
\t\tiifname "veth*" meta mark & 0x0000ff00 == 0x00000100 accept
\t\tip saddr { 10.2.0.0/16, 10.3.0.1 } tcp dport { 22, 443 } accept
\t}
}
"""


@pytest.mark.parametrize(
    ("src", "dport", "proto", "iface", "mark", "verdict"),
    [
        ("10.0.0.7", 1500, "tcp", "eth0", 0, "DROP"),  # interval concatenation: drop
        ("10.0.0.7", 2500, "tcp", "eth0", 0, "DROP"),  # no element: the policy
        ("10.0.1.1", 53, "udp", "eth0", 0, "ACCEPT"),
        ("10.0.1.1", 53, "tcp", "eth0", 0, "DROP"),
        ("10.9.9.9", 1, "tcp", "veth12", 0x100, "ACCEPT"),  # wildcard and masked mark
        ("10.9.9.9", 1, "tcp", "veth12", 0x200, "DROP"),
        ("10.9.9.9", 1, "tcp", "eth0", 0x100, "DROP"),
        ("10.2.5.5", 443, "tcp", "eth0", 0, "ACCEPT"),
        ("10.3.0.1", 22, "tcp", "eth0", 0, "ACCEPT"),
        ("10.3.0.2", 22, "tcp", "eth0", 0, "DROP"),
    ],
)
def test_sets_maps_intervals_and_meta(
    src: str, dport: int, proto: str, iface: str, mark: int, verdict: str
) -> None:
    engine = compile_nft(parse_nft(SETS, "s.nft"))
    walk = node_walker(
        engine, None, NodeNet.simple([ip("192.168.0.2")]), StandInTracker(), EngineState.seeded(0)
    )
    number = {"tcp": 6, "udp": 17}[proto]
    result = walk.evaluate(
        Packet(ip(src), ip("192.168.0.2"), number, 5555, dport), Skb(mark=mark, in_iface=iface), 0
    )
    assert result.verdict == verdict


def test_ipv6_tables_see_ipv6_packets_only() -> None:
    text = (
        "table ip6 v6 {\n chain in {\n  type filter hook input priority 0; policy accept;\n"
        "  ip6 saddr fd00::/8 drop\n }\n}\n"
    )
    engine = compile_nft(parse_nft(text, "v6.nft"))
    node = ("2001:db8::1",)
    assert trace_nft(engine, probe("fd00::5", "2001:db8::1", 80, node_ips=node)).verdict == "DROP"
    assert trace_nft(engine, probe("fe80::5", "2001:db8::1", 80, node_ips=node)).verdict == "ACCEPT"
    v4 = probe("10.0.0.1", "192.168.0.2", 80, node_ips=("192.168.0.2",))
    assert trace_nft(engine, v4).verdict == "ACCEPT"
    assert int(ipaddress.ip_address("fd00::5")) > 1 << 32


NAT_OUT = """table ip out {
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 10.0.0.0/8 ip daddr 203.0.113.0/24 masquerade random
\t\tip saddr 10.0.0.0/8 snat to 192.168.0.100:5000-5010
\t}
\tchain fwd {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct status dnat ct direction original meta mark set 0x7
\t\tct state new ct status snat drop
\t}
}
"""


def test_snat_masquerade_and_ct_status() -> None:
    engine = compile_nft(parse_nft(NAT_OUT, "o.nft"))
    masq = trace_nft(engine, probe("10.0.0.5", "203.0.113.9", 443, node_ips=("192.168.0.2",)))
    assert (masq.verdict, masq.snat, masq.masquerade) == ("ACCEPT", "192.168.0.2:40000", True)
    snat = trace_nft(engine, probe("10.0.0.5", "198.51.100.1", 443, node_ips=("192.168.0.2",)))
    assert (snat.snat, snat.masquerade) == ("192.168.0.100:5000", False)
    walk = node_walker(
        engine,
        None,
        NodeNet.simple([ip("192.168.0.2")]),
        StandInTracker("ESTABLISHED", status=0x20),
        EngineState.seeded(0),
    )
    skb = Skb(in_iface="eth0")
    assert walk.evaluate(Packet(ip("10.0.0.5"), ip("10.9.9.9"), 6, 1, 80), skb, 0).verdict == "ACCEPT"
    assert skb.mark == 7  # ct status dnat held
    new_snat = node_walker(
        engine,
        None,
        NodeNet.simple([ip("192.168.0.2")]),
        StandInTracker("NEW", status=0x10),
        EngineState.seeded(0),
    )
    assert (
        new_snat.evaluate(Packet(ip("10.0.0.5"), ip("10.9.9.9"), 6, 1, 80), Skb(in_iface="eth0"), 0).verdict
        == "DROP"
    )


def test_notrack_before_conntrack_makes_the_packet_untracked() -> None:
    text = (
        "table ip raw {\n chain pre {\n  type filter hook prerouting priority raw; policy accept;\n"
        "  tcp dport 53 notrack\n }\n chain in {\n  type filter hook input priority 0; policy accept;\n"
        "  ct state untracked drop\n }\n}\n"
    )
    engine = compile_nft(parse_nft(text, "raw.nft"))
    assert (
        trace_nft(engine, probe("10.0.0.1", "192.168.0.2", 53, node_ips=("192.168.0.2",))).verdict == "DROP"
    )
    assert (
        trace_nft(engine, probe("10.0.0.1", "192.168.0.2", 54, node_ips=("192.168.0.2",))).verdict == "ACCEPT"
    )
