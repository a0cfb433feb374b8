"""MASQUERADE's address: the kernel is the oracle (`inet_select_addr` on the output device).

Host -> ClusterIP -> a local endpoint leaves through `lo`, whose 127.0.0.1 has host scope: the
kernel takes the first universe-scope address of the node's interfaces instead, never 127.0.0.1.
On an interface with addresses in several subnets, the one whose subnet holds the next hop wins.
"""

from __future__ import annotations

import socket

import pytest

from kplab.lab.inside import inside
from kplab.lab.netns import Lab
from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.iptables_save import parse
from kplab.netfilter.node import NodeNet, Route
from kplab.netfilter.standin import StandInTracker
from kplab.netfilter.state import EngineState, Skb
from kplab.netfilter.traversal import evaluate_node
from kplab.packet import Packet, fmt_ip, ip

RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.0.2:8080
-A POSTROUTING -o lo -j MASQUERADE
COMMIT
"""
# eth0 is created first (the first interface after lo), eth1 holds the endpoint and the client.
IFACES = (("eth0", "10.0.0.2/24"), ("eth1", "10.1.0.2/24"))


def emulated_source(lo_global: str | None = None) -> str:
    lo = {"lo": (ip("127.0.0.1"), ip(lo_global.split("/")[0]))} if lo_global else {}
    node = NodeNet(
        {**lo, **{name: (ip(cidr.split("/")[0]),) for name, cidr in IFACES}},
        [
            Route.parse("10.96.0.0/12", "eth0"),
            Route.parse("10.0.0.0/24", "eth0"),
            Route.parse("10.1.0.0/24", "eth1"),
        ],
    )
    pkt = Packet(ip("10.1.0.2"), ip("10.96.0.1"), 6, 40000, 80, flags=0x02)
    result = evaluate_node(
        compile_ruleset(parse(RULES, "masq.rules")), node, pkt, Skb(), EngineState.seeded(0), 0,
        StandInTracker("NEW"), local_out=True,
    )  # fmt: skip
    assert result.verdict == "ACCEPT" and result.delivery == "local", result.reason
    assert result.snat is not None and result.snat.kind == "MASQUERADE"
    return fmt_ip(pkt.src)


def test_emulator_masquerade_out_lo_takes_the_first_interface_address() -> None:
    assert emulated_source() == "10.0.0.2"


def test_masquerade_source_falls_back_to_another_interface_like_inet_select_addr() -> None:
    node = NodeNet({"lo": (ip("127.0.0.1"),), "eth0": (ip("192.168.0.2"),), "flannel.1": ()})
    assert node.masquerade_source("flannel.1") == ip("192.168.0.2")
    assert node.masquerade_source("lo") == ip("192.168.0.2")
    assert node.masquerade_source("eth0") == ip("192.168.0.2")
    assert NodeNet({"lo": (ip("127.0.0.1"),)}).masquerade_source("lo") is None
    anycast = NodeNet({"lo": (ip("127.0.0.1"), ip("203.0.113.7")), "eth0": (ip("192.168.0.2"),)})
    assert anycast.masquerade_source("lo") == ip("203.0.113.7")  # a global address on lo is lo's own
    linklocal = NodeNet({"dummy0": (ip("169.254.7.1"),), "eth0": (ip("192.168.0.2"),)},
                        scoped=frozenset({ip("169.254.7.1")}))  # fmt: skip  # `scope link`: never chosen
    assert linklocal.masquerade_source("lo") == ip("192.168.0.2")
    assert node.primary("flannel.1") is None  # REDIRECT has no such fallback


@pytest.mark.kernel
@pytest.mark.parametrize("lo_global", [None, "203.0.113.7/32"], ids=["plain-lo", "global-address-on-lo"])
def test_kernel_masquerade_out_lo_takes_the_node_address(lab: Lab, lo_global: str | None) -> None:
    ns = lab.netns("masq")
    ns.run(["ip", "link", "set", "lo", "up"])
    if lo_global is not None:
        ns.run(["ip", "addr", "add", lo_global, "dev", "lo"])
    for name, cidr in IFACES:
        ns.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"])
        ns.run(["ip", "addr", "add", cidr, "dev", name])
        ns.run(["ip", "link", "set", f"{name}p", "up"])
        ns.run(["ip", "link", "set", name, "up"])
    ns.run(["ip", "route", "add", "10.96.0.0/12", "dev", "eth0"])
    ns.run(["iptables-restore"], input=RULES)
    with inside(ns):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.bind(("10.1.0.2", 8080))
            server.listen(1)
            client.settimeout(5)
            client.bind(("10.1.0.2", 0))
            client.connect(("10.96.0.1", 80))
            server.settimeout(5)
            conn, peer = server.accept()
            conn.close()
        finally:
            client.close()
            server.close()
    expected = "10.0.0.2" if lo_global is None else lo_global.split("/")[0]
    assert peer[0] == expected  # neither the client's own 10.1.0.2 nor 127.0.0.1
    assert emulated_source(lo_global) == peer[0]


# Two subnets on one interface: the first address is not the next hop's.
MULTI = ("10.0.0.2/24", "10.2.0.2/24")
MULTI_RULES = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
"""
PEER = "10.2.0.9"  # on eth0's second subnet
BEHIND = "198.51.100.1"  # reached through PEER as gateway


def multi_subnet_source(dst: str) -> str:
    """The emulator's MASQUERADE source for a packet from 10.0.0.2 to `dst` out eth0, the node
    described as `ip addr`/`ip route` would (prefixes known)."""
    from kplab.netfilter import iproute

    addr_text = "1: lo: <LOOPBACK,UP>\n    inet 127.0.0.1/8 scope host lo\n2: eth0: <UP>\n" + "".join(
        f"    inet {cidr} scope global eth0\n" for cidr in MULTI
    )
    route_text = (
        f"10.0.0.0/24 dev eth0 scope link\n10.2.0.0/24 dev eth0 scope link\n"
        f"198.51.100.0/24 via {PEER} dev eth0\n"
    )
    node = iproute.build(
        iproute.parse_addr(addr_text, "addr.txt"), iproute.parse_route(route_text, "route.txt"), ()
    )
    pkt = Packet(ip("10.0.0.2"), ip(dst), 6, 40000, 8080, flags=0x02)
    result = evaluate_node(
        compile_ruleset(parse(MULTI_RULES, "masq.rules")), node, pkt, Skb(), EngineState.seeded(0), 0,
        StandInTracker("NEW"), local_out=True,
    )  # fmt: skip
    assert result.verdict == "ACCEPT" and result.snat is not None, result.reason
    return fmt_ip(pkt.src)


def test_masquerade_prefers_the_address_in_the_next_hops_subnet() -> None:
    assert multi_subnet_source(PEER) == "10.2.0.2"  # on-link destination: itself the next hop
    assert multi_subnet_source(BEHIND) == "10.2.0.2"  # via the gateway PEER
    assert multi_subnet_source("10.0.0.7") == "10.0.0.2"
    # without prefixes (a bare node description) the interface's first address, as before
    node = NodeNet({"eth0": (ip("10.0.0.2"), ip("10.2.0.2"))})
    assert node.masquerade_source("eth0", ip(PEER)) == ip("10.0.0.2")


@pytest.mark.kernel
@pytest.mark.parametrize("dst", [PEER, BEHIND, "10.0.0.9"], ids=["on-link", "via-gateway", "first-subnet"])
def test_kernel_masquerade_prefers_the_next_hops_subnet(lab: Lab, dst: str) -> None:
    node = lab.netns("masqnh")
    peer = lab.netns("masqpeer")
    for ns in (node, peer):
        ns.run(["ip", "link", "set", "lo", "up"])
    node.run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"])
    node.run(["ip", "link", "set", "eth0p", "netns", peer.name])
    for cidr in MULTI:
        node.run(["ip", "addr", "add", cidr, "dev", "eth0"])
    node.run(["ip", "link", "set", "eth0", "up"])
    node.run(["ip", "route", "add", "198.51.100.0/24", "via", PEER, "dev", "eth0"])
    peer.run(["ip", "addr", "add", f"{PEER}/24", "dev", "eth0p"])
    peer.run(["ip", "addr", "add", "10.0.0.9/24", "dev", "eth0p"])
    peer.run(["ip", "addr", "add", f"{BEHIND}/32", "dev", "lo"])
    peer.run(["ip", "link", "set", "eth0p", "up"])
    node.run(["iptables-restore"], input=MULTI_RULES)
    with inside(peer):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind((dst, 8080))
        server.listen(1)
        server.settimeout(10)
    try:
        with inside(node):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.settimeout(10)
            client.bind(("10.0.0.2", 0))
            client.connect((dst, 8080))
        conn, peer_addr = server.accept()
        conn.close()
        client.close()
    finally:
        server.close()
    assert peer_addr[0] == multi_subnet_source(dst)
