"""Matches, one family at a time, through a real compiled chain."""

from __future__ import annotations

import random

import pytest

from kplab.errors import InputError
from kplab.netfilter.chainwalk import walk
from kplab.netfilter.ctview import CtStatus, CtView, FiveTuple
from kplab.netfilter.state import EngineState, Env, Skb, sets_from_mapping
from kplab.packet import ICMP, TCP, UDP, Packet, TcpFlags, ip

from .helpers import engine_of

NOW = 1_000_000_000_000


def verdict(rules: str, pkt: Packet, skb: Skb | None = None, env: Env | None = None, **kw) -> int:  # type: ignore[no-untyped-def]
    engine = engine_of(rules, **kw)
    env = env or Env(NOW, EngineState.seeded(1), frozenset({ip("192.168.0.2")}))
    return walk(engine.chain("filter", "INPUT"), pkt, skb or Skb(in_iface="eth0"), env)


def tcp(
    src: str = "10.0.0.2", dst: str = "192.168.0.2", sport: int = 40000, dport: int = 80, flags: int = 0
) -> Packet:
    return Packet(ip(src), ip(dst), TCP, sport, dport, flags=flags)


DROPS = 0


@pytest.mark.parametrize(
    ("rule", "pkt", "dropped"),
    [
        ("-s 10.0.0.0/8", tcp(), True),
        ("! -s 10.0.0.0/8", tcp(), False),
        ("-d 192.168.0.2/32 -p tcp", tcp(), True),
        ("-p udp", tcp(), False),
        ("! -p udp", tcp(), True),
        ("-p tcp -m tcp --dport 80:90", tcp(dport=85), True),
        ("-p tcp -m tcp ! --dport 80:90", tcp(dport=85), False),
        ("-p tcp -m tcp --sport 40000", tcp(), True),
        ("-p tcp -m tcp --syn", tcp(flags=TcpFlags.SYN), True),
        ("-p tcp -m tcp --syn", tcp(flags=TcpFlags.SYN | TcpFlags.ACK), False),
        ("-p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK", tcp(flags=TcpFlags.SYN | TcpFlags.ACK), True),
        ("-p tcp -m tcp ! --tcp-flags ALL NONE", tcp(flags=TcpFlags.RST), True),
        ("-p tcp -m multiport --dports 22,80,1000:2000", tcp(dport=1500), True),
        ("-p tcp -m multiport --dports 22,80,1000:2000", tcp(dport=81), False),
        ("-p tcp -m multiport --ports 40000", tcp(), True),
        ("-m iprange --src-range 10.0.0.1-10.0.0.9", tcp(), True),
        ("-m iprange ! --dst-range 192.168.0.1-192.168.0.3", tcp(), False),
        ("-i eth+", tcp(), True),
        ("-i eth1", tcp(), False),
        ("! -o eth0", tcp(), True),
        ("-f", tcp(), False),
        ("-m comment --comment hello", tcp(), True),
        ("-m addrtype --dst-type LOCAL", tcp(), True),
        ("-m addrtype --src-type LOCAL", tcp(), False),
        ("-m addrtype --src-type UNICAST", tcp(), True),
        ("-m addrtype ! --dst-type LOCAL", tcp(), False),
        ("-m addrtype --dst-type MULTICAST", tcp(dst="224.0.0.5"), True),
        ("-m addrtype --dst-type LOCAL", tcp(dst="127.0.0.1"), True),
    ],
)
def test_header_matches(rule: str, pkt: Packet, dropped: bool) -> None:
    assert (verdict(f"-A INPUT {rule} -j DROP", pkt) == DROPS) is dropped


def test_icmp_type_by_name_and_number() -> None:
    ping = Packet(ip("10.0.0.2"), ip("192.168.0.2"), ICMP, icmp_type=8)
    frag = Packet(ip("10.0.0.2"), ip("192.168.0.2"), ICMP, icmp_type=3, icmp_code=4)
    assert verdict("-A INPUT -p icmp -m icmp --icmp-type echo-request -j DROP", ping) == DROPS
    assert verdict("-A INPUT -p icmp -m icmp --icmp-type 3/4 -j DROP", frag) == DROPS
    assert verdict("-A INPUT -p icmp -m icmp --icmp-type 3/3 -j DROP", frag) != DROPS


def test_port_match_needs_its_protocol() -> None:
    with pytest.raises(InputError, match=r"^rules:\d+: match 'tcp' needs a matching '-p' protocol"):
        engine_of("-A INPUT -m tcp --dport 80 -j DROP")


def ct(state: str, **kw) -> Skb:  # type: ignore[no-untyped-def]
    return Skb(in_iface="eth0", ct=None if state == "INVALID" else CtView(state, **kw))


@pytest.mark.parametrize(
    ("rule", "skb", "dropped"),
    [
        ("-m conntrack --ctstate INVALID", ct("INVALID"), True),
        ("-m conntrack --ctstate INVALID", ct("NEW"), False),
        ("-m conntrack ! --ctstate INVALID", ct("NEW"), True),
        ("-m conntrack --ctstate RELATED,ESTABLISHED", ct("ESTABLISHED"), True),
        ("-m conntrack --ctstate UNTRACKED", ct("UNTRACKED"), True),
        ("-m state --state NEW", ct("NEW"), True),
        ("-m conntrack --ctstate DNAT", ct("ESTABLISHED", status=CtStatus.DST_NAT), True),
        (
            "-m conntrack --ctstate DNAT",
            ct(
                "ESTABLISHED",
                orig=FiveTuple(1, 2, TCP, 3, 4),
                reply=FiveTuple(9, 1, TCP, 4, 3),
            ),
            True,
        ),
        ("-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT", ct("NEW"), True),
        ("-m conntrack --ctstatus ASSURED", ct("ESTABLISHED", status=CtStatus.ASSURED), True),
        ("-m conntrack --ctstatus ASSURED", ct("ESTABLISHED", status=CtStatus.SEEN_REPLY), False),
        ("-m conntrack --ctdir REPLY", ct("ESTABLISHED", direction="REPLY"), True),
        (
            "-m conntrack --ctorigdst 10.96.0.1 --ctorigdstport 443",
            ct("NEW", orig=FiveTuple(1, ip("10.96.0.1"), TCP, 5, 443), reply=FiveTuple(0, 1, TCP, 443, 5)),
            True,
        ),
        # no entry: only the state test can hold, whatever the '!' of the others
        ("-m conntrack ! --ctorigdst 10.96.0.1", ct("INVALID"), False),
        ("-m conntrack --ctstate INVALID ! --ctdir REPLY", ct("INVALID"), False),
        ("-m mark --mark 0x4000/0x4000", Skb(mark=0x4001), True),
        ("-m mark ! --mark 0x4000/0x4000", Skb(mark=0x4001), False),
        ("-m mark --mark 0x1", Skb(mark=0x4001), False),
        ("-m connmark --mark 0x2/0xff", ct("ESTABLISHED", mark=0x102), True),
        ("-m connmark ! --mark 0x2/0xff", ct("INVALID"), False),
    ],
)
def test_conntrack_and_mark_matches(rule: str, skb: Skb, dropped: bool) -> None:
    assert (verdict(f"-A INPUT {rule} -j DROP", tcp(), skb) == DROPS) is dropped


def test_statistic_random_follows_the_seeded_rng_and_the_kernel_rounding() -> None:
    engine = engine_of("-A INPUT -m statistic --mode random --probability 0.25 -j DROP")
    state = EngineState(random.Random(7))
    env = Env(NOW, state)
    results = [walk(engine.chain("filter", "INPUT"), tcp(), Skb(), env) for _ in range(4000)]
    expect_rng = random.Random(7)
    expected = [0 if expect_rng.getrandbits(31) < 0x20000000 else 1 for _ in range(4000)]
    assert results == expected
    assert 900 < results.count(0) < 1100


def test_statistic_nth_counts_from_packet() -> None:
    engine = engine_of("-A INPUT -m statistic --mode nth --every 3 --packet 1 -j DROP")
    env = Env(NOW, EngineState.seeded(0))
    chain = engine.chain("filter", "INPUT")
    got = [walk(chain, tcp(), Skb(), env) for _ in range(7)]
    assert got == [1, 0, 1, 1, 0, 1, 1]


def test_recent_set_rcheck_update_seconds_hitcount_remove() -> None:
    engine = engine_of(
        "-A INPUT -p tcp -m tcp --dport 1 -m recent --set --name L\n"
        "-A INPUT -p tcp -m tcp --dport 2 -m recent --rcheck --seconds 10 --name L -j DROP\n"
        "-A INPUT -p tcp -m tcp --dport 3 -m recent --update --seconds 10 --hitcount 3 --name L -j DROP\n"
        "-A INPUT -p tcp -m tcp --dport 4 -m recent --remove --name L -j DROP\n"
    )
    state = EngineState.seeded(0)
    chain = engine.chain("filter", "INPUT")

    def send(dport: int, t_s: float) -> int:
        return walk(chain, tcp(dport=dport), Skb(), Env(int(t_s * 1e9), state))

    assert send(2, 0) == 1  # nothing recorded yet
    send(1, 0)
    assert send(2, 5) == 0
    assert send(2, 11) == 1  # the only hit is older than 10 s
    assert send(3, 12) == 1  # one hit in the window (t=0 is out): no match, no update
    send(1, 12)
    assert send(3, 13) == 1  # 1 hit in the window
    send(1, 14)
    assert send(3, 14.5) == 1  # 2 hits in the window (12, 14)
    send(1, 14.7)
    assert send(3, 15) == 0  # 3 hits (12, 14, 14.7): match, and --update records 15
    assert len(state.recent["L"][ip("10.0.0.2")].stamps) == 5
    assert send(4, 16) == 0
    assert send(4, 17) == 1  # removed
    assert ip("10.0.0.2") not in state.recent["L"]


def test_limit_is_a_token_bucket_in_time() -> None:
    engine = engine_of("-A INPUT -m limit --limit 2/sec --limit-burst 3 -j DROP")
    state = EngineState.seeded(0)
    chain = engine.chain("filter", "INPUT")
    burst = [walk(chain, tcp(), Skb(), Env(0, state)) for _ in range(5)]
    assert burst == [0, 0, 0, 1, 1]
    assert walk(chain, tcp(), Skb(), Env(499_000_000, state)) == 1
    assert walk(chain, tcp(), Skb(), Env(500_000_000, state)) == 0


def test_nfacct_counts_packets_and_bytes() -> None:
    engine = engine_of("-A INPUT -m nfacct --nfacct-name seen -j ACCEPT")
    state = EngineState.seeded(0)
    for _ in range(3):
        pkt = tcp()
        pkt.length = 100
        walk(engine.chain("filter", "INPUT"), pkt, Skb(), Env(0, state))
    assert state.nfacct["seen"] == [3, 300]


def test_set_membership_comes_from_the_caller() -> None:
    rule = "-A INPUT -m set --match-set allowed src -j DROP"
    env = Env(NOW, EngineState.seeded(0), sets=sets_from_mapping({"allowed": {ip("10.0.0.2")}}))
    assert verdict(rule, tcp(), env=env) == DROPS
    assert verdict(rule, tcp(src="10.0.0.3"), env=env) != DROPS
    with pytest.raises(InputError, match="needs ipset membership"):
        verdict(rule, tcp())


def test_physdev() -> None:
    rule = "-A INPUT -m physdev --physdev-in veth+ --physdev-is-bridged -j DROP"
    assert verdict(rule, tcp(), Skb(physdev_in="veth1", bridged=True)) == DROPS
    assert verdict(rule, tcp(), Skb(physdev_in="eth1", bridged=True)) != DROPS
    assert verdict(rule, tcp(), Skb()) != DROPS


def test_addrtype_limit_iface_in_uses_that_interface() -> None:
    env = Env(
        NOW,
        EngineState.seeded(0),
        frozenset({ip("192.168.0.2"), ip("10.1.0.1")}),
        {"eth0": frozenset({ip("192.168.0.2")}), "eth1": frozenset({ip("10.1.0.1")})},
    )
    rule = "-A INPUT -m addrtype --dst-type LOCAL --limit-iface-in -j DROP"
    assert verdict(rule, tcp(), Skb(in_iface="eth0"), env) == DROPS
    assert verdict(rule, tcp(), Skb(in_iface="eth1"), env) != DROPS


@pytest.mark.parametrize(("policy", "expected"), [("never-match", 1), ("always-match", 0)])
def test_unknown_match_policy(policy: str, expected: int) -> None:
    assert verdict("-A INPUT -m frobnicate --x 1 -j DROP", tcp(), unknown=policy) == expected


def test_unknown_match_fails_only_when_evaluated() -> None:
    rules = "-A INPUT -p udp -m frobnicate --x 1 -j DROP"
    assert verdict(rules, tcp()) == 1  # -p udp fails first: never reached
    with pytest.raises(InputError, match=r"^rules:\d+: unsupported match 'frobnicate'$"):
        verdict(rules, Packet(ip("10.0.0.2"), ip("192.168.0.2"), UDP, 1, 2))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("-s 10.0.0.300", "bad address"),
        ("-p tcp -m tcp --dport 99999", "bad port"),
        ("-m mark --mark zz", "bad mark"),
        ("-m conntrack --ctstate SORTOF", "unknown conntrack state"),
        ("-m statistic --mode random --probability 2", "bad probability"),
        ("-m recent --name x", "exactly one of"),
        ("-m addrtype --dst-type NEARBY", "unknown type"),
    ],
)
def test_bad_values_are_located(rule: str, message: str) -> None:
    with pytest.raises(InputError, match=rf"^rules:\d+: .*{message}"):
        engine_of(f"-A INPUT {rule} -j DROP")
