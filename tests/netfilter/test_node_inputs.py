"""The node facts users paste: `ip addr`/`ip route` (JSON and text), `ipset save`, `iptables -S`."""

from __future__ import annotations

import pytest

from kplab.errors import InputError
from kplab.netfilter import iproute, ipset
from kplab.netfilter.iptables_s import parse_dump
from kplab.packet import Packet, fmt_ip, ip

from .helpers import DATA

NODES = DATA / "nodes"


def test_ip_addr_json_and_text_give_the_same_interfaces_in_device_order() -> None:
    json_ifaces = iproute.parse_addr((NODES / "kubeadm-flannel.ip-addr.json").read_text(), "a.json")
    names = ["lo", "enp0s3", "enp0s8", "docker0", "virbr0", "flannel.1", "cni0", "veth5f1c2a3d"]
    assert [i.name for i in json_ifaces] == names
    assert [fmt_ip(a) for a in json_ifaces[6].addrs] == ["10.244.1.1"] and json_ifaces[0].scoped == [
        ip("127.0.0.1")
    ]
    text = iproute.parse_addr((NODES / "weave.ip-addr.txt").read_text(), "a.txt")
    text_names = [i.name for i in text]
    assert (
        text_names[:3] == ["lo", "ens5", "datapath"] and "vethwe-datapath" in text_names
    )  # `@peer` suffix dropped
    assert [fmt_ip(a) for a in text[1].addrs] == ["172.31.4.21"]
    line = "2: eth0    inet 10.1.2.3/24 brd 10.1.2.255 scope global eth0\\  valid_lft forever"
    oneline = iproute.parse_addr(line, "o.txt")
    assert [(i.name, [fmt_ip(a) for a in i.addrs]) for i in oneline] == [("eth0", ["10.1.2.3"])]


def test_routes_longest_prefix_metric_and_blackhole() -> None:
    routes = iproute.parse_route(
        "default via 10.0.0.1 dev eth0 proto dhcp src 10.0.0.5 metric 100\n"
        "default via 10.0.0.254 dev eth1 metric 50\n"
        "blackhole 192.168.7.0/26 proto bird\n"
        "192.168.7.3 dev cali7f3a2b1c9d0 scope link\n",
        "r.txt",
    )
    node = iproute.build(None, routes, ())
    assert node.route(ip("8.8.8.8")).dev == "eth1"  # type: ignore[union-attr]
    assert node.route(ip("192.168.7.3")).dev == "cali7f3a2b1c9d0"  # type: ignore[union-attr]
    assert node.route(ip("192.168.7.4")).kind == "blackhole"  # type: ignore[union-attr]
    assert node.is_local(ip("10.0.0.5"))  # a route's `src` is the node's
    table_all = iproute.parse_route(
        "default proto bird metric 20\n"
        "\tnexthop via 10.0.0.1 dev eth0 weight 1\n"
        "\tnexthop via 10.0.1.1 dev eth1 weight 1\n"
        "local 10.0.0.5 dev eth0 table local proto kernel scope host src 10.0.0.5\n"
        "10.50.0.0/16 dev wg0 table 51820 scope link\n"
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium\n",
        "all.txt",
    )
    assert [(r.dev, r.via) for r in table_all.routes] == [("eth0", ip("10.0.0.1"))]
    multipath = iproute.parse_route(
        '[{"dst":"default","protocol":"bird","metric":20,"flags":[],"nexthops":[{"gateway":"10.0.0.1",'
        '"dev":"eth0","weight":1,"flags":[]}]},{"dst":"fe80::/64","dev":"eth0"},'
        '{"type":"local","dst":"10.0.0.5","dev":"eth0","table":"local","prefsrc":"10.0.0.5"}]',
        "all.json",
    )
    assert [(r.dev, r.via) for r in multipath.routes] == [("eth0", ip("10.0.0.1"))]


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (
            iproute.parse_addr,
            "1: lo: <LOOPBACK> mtu 1\n    inet 127.0.0.1/40 scope host lo\n",
            "r:2: prefix length",
        ),
        (
            iproute.parse_addr,
            "1: lo: <LOOPBACK> mtu 1\n    inet 300.0.0.1/8 scope host lo\n",
            "r:2: not an IPv4",
        ),
        (
            iproute.parse_addr,
            '[{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "1.2.3"}]}]',
            "r:1: eth0",
        ),
        (iproute.parse_addr, "[{]", "r:1: not JSON"),
        (iproute.parse_addr, "[" * 100000, "r:1: "),
        (iproute.parse_addr, "hello\n", "r:1: expected `ip addr` output"),
        (
            iproute.parse_route,
            "default via 10.0.0.1 dev eth0\n10.0.0.0/8 frobnicate 3\n",
            "r:2: unknown word",
        ),
        (iproute.parse_route, "10.0.0.0/8 via 10.0.0.1\n", "r:1: route to 10.0.0.0/8 has no 'dev'"),
        (iproute.parse_route, "10.0.0.0/33 dev eth0\n", "r:1: "),
        (iproute.parse_route, '[{"dst": "default", "dev": 3}]', "r:1: route to 'default'"),
        # a metric is the route's u32 priority (`ip route add ... metric 4294967296` is refused)
        (iproute.parse_route, "default dev eth0 metric 4294967296\n", "r:1: metric must be 0 to 4294967295"),
        (iproute.parse_route, "default dev eth0 metric " + "9" * 5003 + "\n", "r:1: metric must be 0"),
        (iproute.parse_route, "default dev eth0 metric \u00b2\n", "r:1: metric must be 0"),
        (iproute.parse_route, '[{"dst": "default", "dev": "eth0", "metric": 4294967296}]', "r:1: route to"),
        (ipset.parse, "add S 10.0.0.1\n", "r:1: 'add' to set 'S' before its 'create'"),
        (ipset.parse, "create S hash:ip,port\nadd S 10.0.0.1\n", "r:2: S (hash:ip,port): element"),
        (ipset.parse, "create S hash:ip\nadd S 10.0.0.300\n", "r:2: S: "),
        (ipset.parse, "create S hash:frob\n", "r:1: unknown set type"),
        (ipset.parse, "create S bitmap:port range 0-65535\nadd S 70000\n", "r:2: S: port out of range"),
        (ipset.parse, "flush\n", "r:1: expected `ipset save` lines"),
        (ipset.parse, "create S bitmap:port range 0-65535\nadd S " + "9" * 5003 + "\n", "r:2: S: not a port"),
    ],
)
def test_bad_node_files_are_one_line_with_file_and_line(parse, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError) as err:
        parse(text, "r")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_ipset_dimensions_follow_the_match_directions() -> None:
    sets = ipset.parse((NODES / "ipvs.ipset").read_text(), "ipvs.ipset")
    udp = Packet(ip("10.244.3.9"), ip("10.96.0.10"), 17, 40000, 53)
    assert sets.lookup("KUBE-CLUSTER-IP", udp, ("dst", "dst")) is True
    assert (
        sets.lookup("KUBE-CLUSTER-IP", Packet(ip("1.1.1.1"), ip("10.96.0.10"), 6, 1, 54), ("dst", "dst"))
        is False
    )
    hairpin = Packet(ip("10.244.3.9"), ip("10.244.3.9"), 17, 40000, 53)
    assert sets.lookup("KUBE-LOOP-BACK", hairpin, ("dst", "dst", "src")) is True
    assert sets.lookup("KUBE-NODE-PORT-TCP", Packet(1, 2, 6, 3, 30080), ("dst",)) is True
    assert sets.lookup("NOT-THERE", udp, ("dst",)) is None and sets.missing == {"NOT-THERE"}
    nomatch = ipset.parse("create N hash:net\nadd N 10.0.0.0/8\nadd N 10.1.0.0/16 nomatch\n", "n")
    assert nomatch.lookup("N", Packet(ip("10.2.0.1"), 0, 6, 1, 1), ("src",)) is True
    assert nomatch.lookup("N", Packet(ip("10.1.0.1"), 0, 6, 1, 1), ("src",)) is False


def test_iptables_s_tables_from_command_lines_or_policy_blocks() -> None:
    eks = parse_dump((NODES / "eks.iptables-S.txt").read_text(), "eks")
    assert list(eks.tables) == ["filter", "nat"]
    assert eks.tables["nat"].chains["KUBE-SERVICES"].rules[0].source.line == 72
    bare = parse_dump(
        "-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n-A PREROUTING -p udp -j CT --notrack\n"
        "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N X\n-A FORWARD -j X\n",
        "s",
    )
    assert list(bare.tables) == ["raw", "filter"] and bare.tables["filter"].chains["FORWARD"].policy == "DROP"
    nat_only = parse_dump("-N KUBE-SEP-A\n-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.0.0.1:80\n", "s")
    assert list(nat_only.tables) == ["nat"]
    verbose = parse_dump("-P FORWARD DROP -c 10 600\n-N K\n-A FORWARD -c 3 180 -j K\n", "v")  # iptables -S -v
    assert verbose.tables["filter"].chains["FORWARD"].rules[0].counters == (3, 180)
    filter_only = parse_dump("-N KUBE-FORWARD\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n", "s")
    assert list(filter_only.tables) == ["filter"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Chain INPUT (policy ACCEPT)\ntarget     prot opt source   destination\n",
            "s:1: this is `iptables -L` output",
        ),
        ("-P INPUT ACCEPT\n-A NOPE -j DROP\n", "s:2: chain 'NOPE' does not exist"),
        ("-P INPUT ACCEPT\nCOMMIT\n", "s:2: 'COMMIT' in `iptables -S` output"),
        (
            "# iptables -S\n-P INPUT ACCEPT\n# iptables -S\n-P INPUT ACCEPT\n",
            "s:4: table 'filter' given twice",
        ),
        ("-P INPUT ACCEPT\nhello\n", "s:2: not an `iptables -S` line"),
    ],
)
def test_bad_iptables_s_is_one_line(text: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse_dump(text, "s")
    assert str(err.value).startswith(message)
