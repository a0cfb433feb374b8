"""MASQUERADE's address: the kernel is the oracle (`inet_select_addr` on the output device).

Host -> ClusterIP -> a local endpoint leaves through `lo`, whose 127.0.0.1 has host scope: the
kernel takes the first universe-scope address of the node's interfaces instead, never 127.0.0.1.
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
