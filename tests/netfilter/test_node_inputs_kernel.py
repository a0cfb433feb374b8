"""The real tools as oracle for what users paste: `ip addr`/`ip route` (JSON and text) from a lab
node give the interfaces and the routes the kernel uses, and `iptables -S` output reads as the same
ruleset as `iptables-save`."""

from __future__ import annotations

import json

import pytest

from kplab.lab.netns import Lab
from kplab.netfilter import iproute
from kplab.netfilter.iptables_s import parse_dump
from kplab.packet import fmt_ip, ip

from .helpers import DATA, without_sources

# A flannel-like node: the uplink, the pod bridge, a VXLAN-like device (a veth here) and a blackhole.
LINKS = (("eth0", "192.168.56.11/24"), ("cni0", "10.244.1.1/24"), ("flannel.1", "10.244.1.0/32"))
ROUTES = (
    ["default", "via", "192.168.56.1", "dev", "eth0"],
    ["10.244.2.0/24", "via", "10.244.2.0", "dev", "flannel.1", "onlink"],
    ["10.244.3.0/24", "via", "10.244.3.0", "dev", "flannel.1", "onlink"],
    ["blackhole", "10.99.0.0/16"],
)
PROBES = ("8.8.8.8", "10.244.2.7", "10.244.3.1", "10.244.1.5", "192.168.56.77", "10.99.1.1")


@pytest.mark.kernel
def test_ip_addr_and_route_output_give_the_kernels_route_choice(lab: Lab) -> None:
    ns = lab.netns("node")
    ns.run(["ip", "link", "set", "lo", "up"])
    for name, cidr in LINKS:
        ns.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"p{name[:6]}"])
        ns.run(["ip", "addr", "add", cidr, "dev", name])
        ns.run(["ip", "link", "set", f"p{name[:6]}", "up"])
        ns.run(["ip", "link", "set", name, "up"])
    for route in ROUTES:
        ns.run(["ip", "route", "add", *route])
    outputs = {form: ns.run(["ip", *flags, what]).stdout for form, flags in (("json", ["-j"]), ("text", []))
               for what in ("addr",)}  # fmt: skip
    routes = {
        form: ns.run(["ip", *flags, "route"]).stdout for form, flags in (("json", ["-j"]), ("text", []))
    }
    nodes = {}
    for form in ("json", "text"):
        ifaces = iproute.parse_addr(outputs[form], f"addr.{form}")
        assert {"lo", "eth0", "cni0", "flannel.1"} <= {i.name for i in ifaces}
        nodes[form] = iproute.build(ifaces, iproute.parse_route(routes[form], f"route.{form}"), ())
    assert nodes["json"].addrs == nodes["text"].addrs and nodes["json"].routes == nodes["text"].routes
    node = nodes["json"]
    for dst in PROBES:
        got = ns.run(["ip", "-j", "route", "get", dst], check=False)
        route = node.route(ip(dst))
        if got.returncode != 0:  # the blackhole: `ip route get` refuses, kplab stops the packet
            assert route is not None and route.kind == "blackhole", dst
            continue
        kernel = json.loads(got.stdout)[0]
        if kernel.get("type") == "local":
            assert node.is_local(ip(dst)), dst
            continue
        assert route is not None and route.dev == kernel["dev"], (dst, kernel)
        assert fmt_ip(node.masquerade_source(route.dev) or 0) == kernel["prefsrc"], (dst, kernel)


@pytest.mark.kernel
def test_iptables_s_output_reads_as_the_same_ruleset_as_iptables_save(lab: Lab) -> None:
    ns = lab.netns("rules")
    ns.run(["iptables-restore"], input=(DATA / "nodes" / "kubeadm-flannel.save").read_text())
    saved = parse_dump(ns.run(["iptables-save"]).stdout, "save")
    pasted = []
    for table in saved.tables:
        pasted.append(f"$ sudo iptables -t {table} -S" if table != "filter" else "$ sudo iptables -S")
        pasted.append(ns.run(["iptables", "-t", table, "-S"]).stdout)
    from_s = parse_dump("\n".join(pasted), "s")
    assert list(from_s.tables) == list(saved.tables)
    for name, table in without_sources(saved).tables.items():
        other = without_sources(from_s).tables[name]
        for chain_name, chain in table.chains.items():
            assert other.chains[chain_name].rules == chain.rules, (name, chain_name)
            assert other.chains[chain_name].policy == chain.policy
    bare = parse_dump(
        "\n".join(ns.run(["iptables", "-t", t, "-S"]).stdout for t in ("nat", "filter")), "bare"
    )
    assert list(bare.tables) == ["nat", "filter"]  # without command lines: told apart by their -P blocks
