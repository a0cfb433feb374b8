"""The one hook walker decides the same with and without a trace (the emulator walks untraced,
`kplab trace` traced), and plugged-in base chains run where their priority puts them."""

from __future__ import annotations

import pytest

from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.conntrack import Conntrack
from kplab.netfilter.ctview import Nat
from kplab.netfilter.engine import Engine
from kplab.netfilter.hooks import Hook
from kplab.netfilter.iptables_save import parse
from kplab.netfilter.linux_tracker import LinuxTracker
from kplab.netfilter.standin import StandInTracker
from kplab.netfilter.state import EngineState, Skb
from kplab.netfilter.tables import TableChain, base_chains
from kplab.netfilter.traversal import HookWalker, NodeVerdict, Tracker, evaluate_node, hook_chains
from kplab.packet import TCP, UDP, Packet, ip

from .test_traversal import ENGINE, NODE

CLIENT, VIP, POD, OUTSIDE = ip("10.244.0.7"), ip("10.96.0.1"), ip("10.244.1.5"), ip("1.1.1.1")
SYN, SYNACK, ACK, RST = 0x02, 0x12, 0x10, 0x04

# filter rules that end walks early: a DROP, a REJECT, a user chain that returns.
FILTER = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CHECK - [0:0]
-A FORWARD -j CHECK
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -p tcp -m tcp --dport 9 -j REJECT --reject-with tcp-reset
-A FORWARD -p udp -j DROP
-A CHECK -p tcp -m tcp --dport 7 -j DROP
-A INPUT -p tcp -m tcp --dport 22 -j DROP
COMMIT
"""
NAT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j MARK --or-mark 0x4000
-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
-A OUTPUT -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
COMMIT
"""
RULES = compile_ruleset(parse(FILTER + NAT, "node.rules"))


def outcome(result: NodeVerdict, pkt: Packet, skb: Skb) -> tuple[object, ...]:
    return (
        result.verdict, result.delivery, result.hook, result.out_iface, result.dnat, result.snat,
        result.masquerade, result.reject_with, result.reason, pkt, skb.out_iface, skb.in_iface, skb.mark,
        None if skb.ct is None else (skb.ct.state, skb.ct.status, skb.ct.orig, skb.ct.reply),
    )  # fmt: skip


def both(
    engine: Engine, make: Packet, tracker: tuple[Tracker, Tracker], local_out: bool, in_iface: str
) -> None:
    """Evaluate copies of one packet traced and untraced (each with its own tracker) and compare."""
    results = []
    for trace, track in zip((True, False), tracker, strict=True):
        pkt, skb = make.copy(), Skb(in_iface=None if local_out else in_iface)
        result = evaluate_node(
            engine, NODE, pkt, skb, EngineState.seeded(0), 7, track, local_out=local_out, trace=trace
        )
        results.append(outcome(result, pkt, skb))
    assert results[0] == results[1]


PACKETS = [
    (Packet(CLIENT, VIP, TCP, 40000, 80, flags=SYN), False, "cni0"),
    (Packet(CLIENT, POD, TCP, 40001, 7, flags=SYN), False, "cni0"),
    (Packet(CLIENT, POD, TCP, 40002, 9, flags=SYN), False, "cni0"),
    (Packet(CLIENT, OUTSIDE, UDP, 5353, 53), False, "cni0"),
    (Packet(OUTSIDE, ip("192.168.0.2"), TCP, 5000, 22, flags=SYN), False, "eth0"),
    (Packet(OUTSIDE, ip("192.168.0.2"), TCP, 5000, 23, flags=SYN), False, "eth0"),
    (Packet(ip("192.168.0.2"), VIP, TCP, 41000, 80, flags=SYN), True, ""),
    (Packet(ip("192.168.0.2"), ip("192.168.0.2"), TCP, 41001, 80, flags=SYN), True, ""),
    (Packet(ip("192.168.0.2"), ip("9.9.9.9"), TCP, 41002, 443, flags=ACK), True, ""),
]


@pytest.mark.parametrize("engine", [ENGINE, RULES], ids=["every-chain-logs", "drops-and-nat"])
@pytest.mark.parametrize("state", ["NEW", "ESTABLISHED", "INVALID", "UNTRACKED"])
@pytest.mark.parametrize("case", range(len(PACKETS)))
def test_untraced_walk_decides_as_the_traced_walk_with_the_stand_in(
    engine: Engine, state: str, case: int
) -> None:
    pkt, local_out, in_iface = PACKETS[case]
    both(engine, pkt, (StandInTracker(state), StandInTracker(state)), local_out, in_iface)


def test_untraced_walk_decides_as_traced_through_a_dnat_connection() -> None:
    """A handshake through the VIP, a stray ACK, a RST: same verdicts, rewrites and conntrack."""
    cts = (Conntrack(), Conntrack())
    trackers = (LinuxTracker(cts[0]), LinuxTracker(cts[1]))
    client = [
        Packet(CLIENT, VIP, TCP, 40000, 80, flags=SYN, seq=100, win=1000),
        Packet(CLIENT, VIP, TCP, 40000, 80, flags=ACK, seq=101, ack=501, win=1000),
        Packet(CLIENT, VIP, TCP, 40000, 80, flags=ACK, seq=101, ack=501, win=1000, length=100),
        Packet(CLIENT, VIP, TCP, 40000, 80, flags=ACK, seq=9_000_000, ack=501, win=1000),
        Packet(CLIENT, VIP, TCP, 40000, 80, flags=RST, seq=201),
    ]
    server = Packet(POD, ip("10.244.0.1"), TCP, 8080, 40000, flags=SYNACK, seq=500, ack=101, win=1000)
    both(RULES, client[0], trackers, False, "cni0")
    both(RULES, server, trackers, False, "eth0")
    for pkt in client[1:]:
        both(RULES, pkt, trackers, False, "cni0")
    both(RULES, Packet(OUTSIDE, ip("192.168.0.2"), TCP, 5000, 23, flags=SYN, seq=1), trackers, False, "eth0")
    assert len(cts[0]) == len(cts[1]) == 2
    assert [vars_of(e) for e in cts[0].entries()] == [vars_of(e) for e in cts[1].entries()]
    assert cts[0].stats == cts[1].stats


def vars_of(entry: object) -> tuple[object, ...]:
    return tuple(getattr(entry, name) for name in ("orig_key", "reply_key", "status", "timeout_ns", "mark"))


def test_a_node_walker_rebinds_the_clock_and_addresses_per_packet() -> None:
    path = HookWalker(base_chains(RULES), NODE, StandInTracker("ESTABLISHED"), EngineState.seeded(0))
    assert path.run(Packet(CLIENT, POD, TCP, 1, 80, flags=ACK), Skb(in_iface="cni0"), 5, False) == "forward"
    assert path.env.now_ns == 5 and path.out_iface == "eth0"
    assert path.run(Packet(CLIENT, POD, TCP, 1, 7, flags=ACK), Skb(in_iface="cni0"), 9, False) == "dropped"
    assert (path.verdict, path.hook.value, path.env.now_ns, path.out_iface) == ("DROP", "FORWARD", 9, "eth0")


# Base chains from another rule engine (as nftables gives them), stood in for by compiled chains of
# a second ruleset: a filter-type chain (mangle's) and a nat chain, registered at a hook with a priority.
PLUGGED = """*mangle
:PREROUTING ACCEPT [0:0]
-A PREROUTING -s 10.244.0.66/32 -j DROP
-A PREROUTING
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.9:9090
-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.9:9090
COMMIT
"""
OTHER = compile_ruleset(parse(PLUGGED, "other.rules"))


def plugged(table: str, priority: int) -> TableChain:
    chain = OTHER.chain(table, "PREROUTING")
    assert chain is not None
    return TableChain(chain, Hook.PREROUTING, priority)


def walked(result: NodeVerdict) -> list[str]:
    """Each chain the walk entered, once, as file:table:chain."""
    seen: list[str] = []
    for entry in result.trace:
        source = entry.rule.source if entry.rule is not None else entry.source
        name = f"{source.file if source else '?'}:{entry.table}:{entry.chain}"
        if not seen or seen[-1] != name:
            seen.append(name)
    return seen


def plug(pkt: Packet, *chains: TableChain, trace: bool = True) -> tuple[NodeVerdict, Packet]:
    pkt = pkt.copy()
    result = evaluate_node(
        ENGINE,
        NODE,
        pkt,
        Skb(in_iface="cni0"),
        EngineState.seeded(0),
        0,
        StandInTracker(),
        chains=chains,
        trace=trace,
    )
    return result, pkt


def test_a_plugged_filter_chain_runs_between_mangle_and_nat_by_its_priority() -> None:
    """nftables' filter-prerouting-pre-dnat sits at -110: after mangle (-150), before DNAT (-100)."""
    result, _ = plug(Packet(CLIENT, VIP, TCP, 40000, 80, flags=SYN), plugged("mangle", -110))
    assert walked(result)[:4] == [
        "node.rules:raw:PREROUTING",
        "node.rules:mangle:PREROUTING",
        "other.rules:mangle:PREROUTING",
        "node.rules:nat:PREROUTING",
    ]
    early, _ = plug(Packet(CLIENT, VIP, TCP, 40000, 80, flags=SYN), plugged("mangle", -301))
    assert walked(early)[:2] == ["other.rules:mangle:PREROUTING", "node.rules:raw:PREROUTING"]


def test_a_drop_in_a_plugged_chain_ends_the_walk_before_nat() -> None:
    for trace in (True, False):
        sent = Packet(ip("10.244.0.66"), VIP, TCP, 40000, 80, flags=SYN)
        result, pkt = plug(sent, plugged("mangle", -110), trace=trace)
        assert (result.verdict, result.delivery, result.hook) == ("DROP", "dropped", Hook.PREROUTING)
        assert result.dnat is None and pkt == sent  # the node's DNAT never ran
        assert not trace or walked(result)[-1] == "other.rules:mangle:PREROUTING"


def test_the_first_nat_chain_that_decides_binds() -> None:
    """The NAT core consults the hook's nat chains in priority order until one decides."""
    later, pkt = plug(Packet(CLIENT, VIP, TCP, 40000, 80, flags=SYN), plugged("nat", -90))
    assert later.dnat == Nat("DNAT", POD, POD, 8080, 8080) and (pkt.dst, pkt.dport) == (POD, 8080)
    assert "other.rules:nat:PREROUTING" not in walked(later)
    _, pkt = plug(Packet(CLIENT, VIP, TCP, 40000, 80, flags=SYN), plugged("nat", -110))
    assert (pkt.dst, pkt.dport) == (ip("10.244.1.9"), 9090)
    # the node's own nat chain does not decide for 10.96.0.2: the plugged one, consulted after it, does
    other, pkt = plug(Packet(CLIENT, ip("10.96.0.2"), TCP, 40000, 80, flags=SYN), plugged("nat", -90))
    assert (pkt.dst, pkt.dport) == (ip("10.244.1.9"), 9090)
    assert walked(other)[2:4] == ["node.rules:nat:PREROUTING", "other.rules:nat:PREROUTING"]


def test_hook_chains_order_by_priority_then_later_registered_first() -> None:
    a, b, c = plugged("mangle", 0), plugged("mangle", -110), plugged("mangle", 0)
    assert hook_chains(Hook.PREROUTING, [a, b, c], True).late == (c, a)
    assert hook_chains(Hook.PREROUTING, [a, b, c], True).middle == (b,)
    with pytest.raises(ValueError, match="no NAT"):
        hook_chains(Hook.FORWARD, [TableChain(plugged("nat", 0).chain, Hook.FORWARD, 0)], True)


def test_an_inert_chain_is_skipped_untraced_and_walked_traced() -> None:
    chains = base_chains(RULES)
    inert = [c for c in chains if c.inert()]
    assert inert and all(not c.chain.rules for c in inert)
    assert all(c not in hook_chains(c.hook, chains, False).middle for c in inert)
    assert hook_chains(Hook.INPUT, chains, True).middle == tuple(
        c for c in chains if c.hook is Hook.INPUT and not c.nat
    )
