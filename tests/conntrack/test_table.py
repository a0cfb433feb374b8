"""The table: capacity (early_drop, drop), GC, NAT bindings, UDP, ICMP, listing, counters."""

from __future__ import annotations

import random

from kplab.netfilter.conntrack import PROFILE_5_4, PROFILE_6_1, Conntrack, Sysctls, listing, stats_line
from kplab.netfilter.ctview import FiveTuple, Nat
from kplab.packet import ICMP, TCP, UDP, Packet, ip

S = 1_000_000_000
A, B, C = ip("10.0.0.2"), ip("10.0.1.2"), ip("203.0.113.9")


def syn(src: int, sport: int, dst: int = B, dport: int = 80) -> Packet:
    return Packet(src, dst, TCP, sport, dport, 0x02, 1000, 0, 64240, wscale=7, sackok=True)


def handshake(ct: Conntrack, src: int, sport: int, now: int = S) -> None:
    res = ct.lookup(syn(src, sport), "PREROUTING", now)
    ct.apply_nat(Packet(src, B, TCP, sport, 80), res, "POSTROUTING")
    assert ct.confirm(res, now)
    ct.lookup(Packet(B, src, TCP, 80, sport, 0x12, 5000, 1001, 65160, wscale=7), "PREROUTING", now)
    ct.lookup(Packet(src, B, TCP, sport, 80, 0x10, 1001, 5001, 502), "PREROUTING", now)


def test_full_table_evicts_unassured_first_then_drops() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(nf_conntrack_max=2), random.Random(0))
    handshake(ct, A, 1000)  # ASSURED
    ct.confirm(ct.lookup(syn(A, 1001), "PREROUTING", S), S)  # SYN_SENT only
    res = ct.lookup(syn(A, 1002), "PREROUTING", S)
    assert res.kind == "NEW" and ct.stats.early_drop == 1
    assert ct.find(FiveTuple(A, B, TCP, 1001, 80)) is None
    ct.confirm(res, S)
    handshake(ct, A, 1002)
    full = ct.lookup(syn(A, 1003), "PREROUTING", S)
    assert (full.kind, full.verdict, full.reason) == ("DROP", "DROP", "table full, dropping packet")
    assert ct.stats.drop == 1 and len(ct) == 2
    # existing entries keep working
    data = Packet(A, B, TCP, 1000, 80, 0x18, 1001, 5001, 502, 10)
    assert ct.lookup(data, "PREROUTING", S).kind == "ESTABLISHED"


def test_expired_entries_are_gone_on_lookup_and_by_gc() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    ct.confirm(ct.lookup(syn(A, 1000), "PREROUTING", S), S)
    ct.confirm(ct.lookup(syn(A, 1001), "PREROUTING", S), S)
    assert ct.gc(S + 119 * S) == 0
    assert ct.gc(S + 120 * S) == 2 and len(ct) == 0
    ct.confirm(ct.lookup(syn(A, 1000), "PREROUTING", S), S)
    again = ct.lookup(syn(A, 1000), "PREROUTING", S + 500 * S)
    assert again.kind == "NEW" and again.entry is not ct.find(FiveTuple(A, B, TCP, 1000, 80))


def _snat(ct: Conntrack, src: int, sport: int, nat: Nat) -> FiveTuple:
    res = ct.lookup(syn(src, sport, C), "PREROUTING", S)
    ct.bind_nat(res, nat, "POSTROUTING", out_addr=ip("192.0.2.1"))
    pkt = syn(src, sport, C)
    ct.apply_nat(pkt, res, "POSTROUTING")
    assert ct.confirm(res, S)
    return FiveTuple(pkt.src, pkt.dst, TCP, pkt.sport, pkt.dport)


def test_masquerade_keeps_the_port_unless_it_clashes() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(7))
    first = _snat(ct, A, 40000, Nat("MASQUERADE"))
    assert first == FiveTuple(ip("192.0.2.1"), C, TCP, 40000, 80)
    second = _snat(ct, ip("10.0.0.3"), 40000, Nat("MASQUERADE"))  # same port from another pod
    assert second.src == ip("192.0.2.1") and second.sport != 40000 and second.sport >= 1024
    # the reply to the remapped port is translated back to the second pod
    reply = Packet(C, ip("192.0.2.1"), TCP, 80, second.sport, 0x12, 1, 1001, 100)
    res = ct.lookup(reply, "PREROUTING", S)
    ct.apply_nat(reply, res, "PREROUTING")
    assert (reply.dst, reply.dport) == (ip("10.0.0.3"), 40000)


def test_random_fully_is_deterministic_per_seed_and_stays_in_range() -> None:
    nat = Nat("SNAT", ip("192.0.2.1"), ip("192.0.2.1"), 30000, 30010, random_fully=True)
    ports = []
    for _ in range(2):
        ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(42))
        ports.append([_snat(ct, A, 50000 + i, nat).sport for i in range(11)])
    assert ports[0] == ports[1]
    assert sorted(ports[0]) == list(range(30000, 30011))  # all distinct: no clash


def test_invalid_packet_gets_no_nat_and_counts() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    fin_only = Packet(A, B, TCP, 1, 80, 0x01, 5, 0, 100)
    res = ct.lookup(fin_only, "PREROUTING", S)
    assert res.kind == "INVALID" and res.view() is None and ct.stats.invalid == 1
    assert not ct.apply_nat(fin_only, res, "PREROUTING")


def test_notrack_is_untracked_and_counts_ignore_on_5_4_only() -> None:
    old = Conntrack(PROFILE_5_4, Sysctls(), random.Random(0))
    view = old.lookup(syn(A, 1), "PREROUTING", S, notrack=True).view()
    assert view is not None and view.state == "UNTRACKED" and old.stats.ignore == 1
    new = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    new.lookup(syn(A, 1), "PREROUTING", S, notrack=True)
    assert new.stats.ignore == 0


def test_udp_unreplied_then_stream_after_two_seconds() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    query = Packet(A, B, UDP, 5353, 53, length=40)
    res = ct.lookup(query, "PREROUTING", S)
    ct.confirm(res, S)
    assert res.entry is not None and res.entry.timeout_ns == S + 30 * S
    answer = ct.lookup(Packet(B, A, UDP, 53, 5353, length=80), "PREROUTING", S)
    assert answer.kind == "ESTABLISHED" and not answer.entry.assured  # type: ignore[union-attr]
    late = ct.lookup(Packet(A, B, UDP, 5353, 53), "PREROUTING", 4 * S)
    assert late.entry is not None and late.entry.assured and late.entry.timeout_ns == 4 * S + 120 * S


def test_icmp_error_is_related_to_the_flow_it_quotes_and_natted_back() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    vip = ip("192.168.0.2")
    res = ct.lookup(syn(A, 1000, vip), "PREROUTING", S)
    ct.bind_nat(res, Nat("DNAT", B, B, 80, 80), "PREROUTING")
    ct.confirm(res, S)
    quoted = Packet(A, B, TCP, 1000, 80, 0x02, 1000, 0, 64240)  # as it left the node, DNATed
    error = Packet(ip("10.0.1.1"), A, ICMP, icmp_type=3, icmp_code=4, inner=quoted)
    res = ct.lookup(error, "PREROUTING", S)
    assert (res.kind, res.direction) == ("RELATED", 1)  # travels back to the originator
    assert ct.apply_nat(error, res, "POSTROUTING")
    assert (error.src, quoted.dst, quoted.dport) == (vip, vip, 80)
    stray = Packet(ip("10.0.1.1"), A, ICMP, icmp_type=3, inner=Packet(A, C, TCP, 9, 9))
    assert ct.lookup(stray, "PREROUTING", S).kind == "INVALID" and ct.stats.icmp_error == 1


def test_listing_like_conntrack_l() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    res = ct.lookup(syn(A, 40000, ip("192.168.0.2")), "PREROUTING", S)
    ct.bind_nat(res, Nat("DNAT", B, B, 80, 80), "PREROUTING")
    ct.confirm(res, S)
    text = listing(ct.entries(), S + S // 2, extended=True)
    assert text.splitlines()[0] == (
        "ipv4     2 tcp      6 119 SYN_SENT src=10.0.0.2 dst=192.168.0.2 sport=40000 dport=80 [UNREPLIED] "
        "src=10.0.1.2 dst=10.0.0.2 sport=80 dport=40000 mark=0 use=1"
    )
    assert text.endswith("1 flow entries have been shown.")


def test_accounting_counts_accepted_packets_and_ip_bytes_per_direction() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(nf_conntrack_acct=1), random.Random(0))
    handshake(ct, A, 1000)
    entry = ct.find(FiveTuple(A, B, TCP, 1000, 80))
    assert entry is not None and entry.acct == [2, 48 + 40, 1, 44]  # SYN: 8 option bytes, SYN/ACK: 4
    ct.lookup(Packet(A, B, TCP, 1000, 80, 0x01, 1001, 0, 502), "PREROUTING", S)  # INVALID: not counted
    assert entry.acct[0] == 2
    line = listing([entry], S).splitlines()[0]
    assert "dport=80 packets=2 bytes=88 src=" in line and "dport=1000 packets=1 bytes=44 [ASSURED]" in line


def test_stats_line_like_conntrack_s() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    ct.lookup(Packet(A, B, TCP, 1, 80, 0x01, 5, 0, 100), "PREROUTING", S)
    assert stats_line(ct.stats) == (
        "cpu=0   \tfound=0 invalid=1 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 "
        "search_restart=0 clash_resolve=0 chaintoolong=0"
    )


def test_connmark_written_back_reaches_the_next_packets_view() -> None:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(0))
    res = ct.lookup(syn(A, 1000), "PREROUTING", S)
    view = res.view(S)
    assert view is not None and view.state == "NEW" and view.expires_s == 120
    view.mark = 0x4000
    ct.write_back(res, view)
    ct.confirm(res, S)
    later = ct.lookup(Packet(B, A, TCP, 80, 1000, 0x12, 5000, 1001, 65160), "PREROUTING", S).view(S)
    assert later is not None and (later.mark, later.direction, later.state) == (
        0x4000,
        "REPLY",
        "ESTABLISHED",
    )
