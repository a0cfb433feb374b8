"""A packet through a node's hooks: order, routing, NAT for NEW only, INVALID and UNTRACKED."""

from __future__ import annotations

from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.ctview import CtView, Nat
from kplab.netfilter.iptables_save import parse
from kplab.netfilter.node import NodeNet, Route
from kplab.netfilter.standin import StandInTracker
from kplab.netfilter.state import EngineState, Skb
from kplab.netfilter.traversal import Hook, Manip, NodeVerdict, evaluate_node
from kplab.packet import TCP, Packet, fmt_ip, ip

# Every built-in chain of every table logs itself (a rule with no target), so the trace shows
# the order of the hooks; nat PREROUTING DNATs the VIP, nat POSTROUTING masquerades marked packets.
TABLES = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
EXTRA = {
    "nat": "-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j MARK --or-mark 0x4000\n"
    "-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080\n"
    "-A OUTPUT -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080\n"
    "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n",
}


def ruleset_text() -> str:
    out = []
    for table, chains in TABLES.items():
        out.append(f"*{table}")
        out += [f":{c} ACCEPT [0:0]" for c in chains]
        out += [f"-A {c}" for c in chains]
        out.append(EXTRA.get(table, "").rstrip("\n"))
        out.append("COMMIT")
    return "\n".join(line for line in out if line) + "\n"


ENGINE = compile_ruleset(parse(ruleset_text(), "node.rules"))
NODE = NodeNet(
    {"eth0": (ip("192.168.0.2"),), "cni0": (ip("10.244.0.1"),)},
    [
        Route.parse("0.0.0.0/0", "eth0"),
        Route.parse("10.244.0.0/24", "cni0"),
        Route.parse("10.244.1.0/24", "eth0"),
    ],
)


def go(pkt: Packet, state: str = "NEW", *, local_out: bool = False, in_iface: str = "eth0") -> NodeVerdict:
    skb = Skb(in_iface=None if local_out else in_iface)
    return evaluate_node(
        ENGINE, NODE, pkt, skb, EngineState.seeded(0), 0, StandInTracker(state), local_out=local_out
    )


def visited(result: NodeVerdict) -> list[str]:
    return [f"{e.table}:{e.chain}" for e in result.trace if e.kind == "rule" and e.rule and not e.rule.target]


def test_forwarded_new_packet_order_dnat_and_masquerade() -> None:
    pkt = Packet(ip("192.168.5.5"), ip("10.96.0.1"), TCP, 40000, 80)
    result = go(pkt)
    assert visited(result) == [
        "raw:PREROUTING",
        "mangle:PREROUTING",
        "nat:PREROUTING",
        "mangle:FORWARD",
        "filter:FORWARD",
        "mangle:POSTROUTING",
        "nat:POSTROUTING",
    ]
    assert (result.verdict, result.delivery, result.out_iface) == ("ACCEPT", "forward", "eth0")
    assert (fmt_ip(pkt.dst), pkt.dport) == ("10.244.1.5", 8080)
    assert fmt_ip(pkt.src) == "192.168.0.2" and result.masquerade
    assert result.snat == Nat("MASQUERADE", ip("192.168.0.2"), ip("192.168.0.2"))


def test_local_delivery_runs_input_and_nat_input() -> None:
    result = go(Packet(ip("192.168.5.5"), ip("192.168.0.2"), TCP, 40000, 22))
    assert visited(result) == [
        "raw:PREROUTING",
        "mangle:PREROUTING",
        "nat:PREROUTING",
        "mangle:INPUT",
        "filter:INPUT",
        "nat:INPUT",
    ]
    assert result.delivery == "local"


def test_established_packet_skips_nat_chains() -> None:
    pkt = Packet(ip("192.168.5.5"), ip("10.96.0.1"), TCP, 40000, 80)
    result = go(pkt, "ESTABLISHED")
    assert "nat:PREROUTING" not in visited(result) and "nat:POSTROUTING" not in visited(result)
    assert fmt_ip(pkt.dst) == "10.96.0.1"  # the stand-in has no earlier binding to apply


def test_invalid_packet_escapes_nat() -> None:
    pkt = Packet(ip("192.168.5.5"), ip("10.96.0.1"), TCP, 40000, 80)
    result = go(pkt, "INVALID")
    assert "nat:PREROUTING" not in visited(result)
    assert fmt_ip(pkt.dst) == "10.96.0.1" and result.dnat is None


def test_raw_notrack_skips_conntrack_and_nat() -> None:
    text = ruleset_text().replace("-A PREROUTING\n", "-A PREROUTING -j CT --notrack\n", 1)
    engine = compile_ruleset(parse(text, "x"))
    pkt = Packet(ip("192.168.5.5"), ip("10.96.0.1"), TCP, 40000, 80)
    skb = Skb(in_iface="eth0")
    result = evaluate_node(engine, NODE, pkt, skb, EngineState.seeded(0), 0, StandInTracker("NEW"))
    assert skb.ct == CtView("UNTRACKED") and result.dnat is None and fmt_ip(pkt.dst) == "10.96.0.1"


def test_longest_prefix_route_picks_the_interface() -> None:
    assert go(Packet(ip("192.168.5.5"), ip("10.244.0.9"), TCP, 1, 2)).out_iface == "cni0"
    node = NodeNet({"eth0": (ip("192.168.0.2"),)}, [Route.parse("10.0.0.0/8", "eth0")])
    result = evaluate_node(
        ENGINE,
        node,
        Packet(ip("10.1.1.1"), ip("8.8.8.8"), TCP, 1, 2),
        Skb(in_iface="eth0"),
        EngineState.seeded(0),
        0,
        StandInTracker(),
    )
    assert (result.verdict, result.reason) == ("DROP", "no route to host")


def test_locally_generated_to_a_vip_then_loopback_delivery() -> None:
    pkt = Packet(ip("192.168.0.2"), ip("10.96.0.1"), TCP, 40000, 80)
    result = go(pkt, local_out=True)
    assert visited(result)[:5] == [
        "raw:OUTPUT",
        "mangle:OUTPUT",
        "nat:OUTPUT",
        "filter:OUTPUT",
        "mangle:POSTROUTING",
    ]
    assert (fmt_ip(pkt.dst), result.out_iface, result.delivery) == ("10.244.1.5", "eth0", "out")
    local = Packet(ip("192.168.0.2"), ip("192.168.0.2"), TCP, 40000, 22)
    result = go(local, local_out=True)
    assert result.delivery == "local"
    # back in through lo with its entry: no second lookup, both NAT manips already bound
    assert visited(result)[-4:] == ["raw:PREROUTING", "mangle:PREROUTING", "mangle:INPUT", "filter:INPUT"]


def test_filter_drop_stops_the_walk() -> None:
    text = ruleset_text().replace(
        ":FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT\n-A FORWARD",
        ":FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT\n-A FORWARD",
    )
    engine = compile_ruleset(parse(text, "x"))
    result = evaluate_node(
        engine,
        NODE,
        Packet(ip("1.1.1.1"), ip("10.244.0.9"), TCP, 1, 2),
        Skb(in_iface="eth0"),
        EngineState.seeded(0),
        0,
        StandInTracker(),
    )
    assert (result.verdict, result.hook, result.delivery) == ("DROP", Hook.FORWARD, "dropped")
    assert result.trace[-1].kind == "policy"


def test_tracker_protocol_names() -> None:
    assert {m.value for m in Manip} == {"SRC", "DST"}
    assert [h.value for h in Hook] == ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
