"""RST rules: RFC 9293 answers for segments that match no socket; RFC 5961 RST acceptance as Linux
implements it (tcp_validate_incoming); challenge ACK rate limits."""

from __future__ import annotations

import errno

from kplab.packet import TCP, Packet, TcpFlags
from kplab.tcp import TcpConfig, TcpState

from .direct import A, B, established, shuttle, stacks, take

R, AK, S, F, P = TcpFlags.RST, TcpFlags.ACK, TcpFlags.SYN, TcpFlags.FIN, TcpFlags.PSH
MASK = 0xFFFFFFFF


def seg(flags: int, seq: int, ack: int = 0, length: int = 0, sport: int = 40000, dport: int = 80) -> Packet:
    return Packet(A, B, TCP, sport, dport, int(flags), seq & MASK, ack & MASK, 100, length)


def test_no_socket_ack_set_gets_rst_with_seq_seg_ack() -> None:
    _, b = stacks()
    b.input(seg(AK | P, 1000, ack=777_777, length=50), 0)
    (rst,) = take(b)
    assert (rst.flags, rst.seq, rst.ack, rst.win) == (R, 777_777, 0, 0)
    assert (rst.src, rst.sport, rst.dst, rst.dport) == (B, 80, A, 40000)
    assert rst.notes == ["no socket: RST"]
    assert b.ctr.OutRsts == 1


def test_no_socket_without_ack_gets_rst_ack_covering_the_segment() -> None:
    _, b = stacks()
    b.input(seg(S, MASK), 0)  # SYN at 2**32-1: the ACK wraps
    b.input(seg(F, 500, length=10), 0)
    syn_rst, fin_rst = take(b)
    assert (syn_rst.flags, syn_rst.seq, syn_rst.ack) == (R | AK, 0, 0)
    assert (fin_rst.flags, fin_rst.seq, fin_rst.ack) == (R | AK, 0, 511)


def test_rst_is_never_answered() -> None:
    _, b = stacks()
    b.listen(B, 80)
    b.input(seg(R, 1), 0)
    b.input(seg(R | AK, 1, ack=5, dport=81), 0)
    assert take(b) == []
    assert b.ctr.OutRsts == 0


def test_ack_to_listener_without_connection_gets_rst() -> None:
    _, b = stacks()
    b.listen(B, 80)
    b.input(seg(AK, 9, ack=1234), 0)
    (rst,) = take(b)
    assert (rst.flags, rst.seq) == (R, 1234)


def _rst_to_server(seq_offset: int, state_setup: str = "") -> tuple[object, ...]:
    a, b, client, server = established()
    if state_setup == "close_wait":
        a.close(client, 0)
        b.input(take(a)[0], 0)  # client's FIN: server -> CLOSE_WAIT
        take(b)
        assert server.state == TcpState.CLOSE_WAIT
    server.app = object()  # so that CLOSED events are recorded
    rst = Packet(A, B, TCP, client.lport, 80, int(R), (server.rcv_nxt + seq_offset) & MASK, 0, 0, 0)
    b.input(rst, 10**9)
    return server, take(b), b.ctr


def test_rst_exact_seq_resets_with_econnreset_and_estab_resets() -> None:
    server, out, ctr = _rst_to_server(0)
    assert server.state == TcpState.CLOSE and server.error == errno.ECONNRESET  # type: ignore[attr-defined]
    assert out == []
    assert ctr.EstabResets == 1 and ctr.CurrEstab == 0  # type: ignore[attr-defined]


def test_rst_in_window_but_inexact_gets_challenge_ack() -> None:
    server, out, ctr = _rst_to_server(1)
    assert server.state == TcpState.ESTABLISHED  # type: ignore[attr-defined]
    (ack,) = out
    assert isinstance(ack, Packet)
    assert ack.flags == AK
    assert ack.seq == server.snd_nxt & MASK and ack.ack == server.rcv_nxt & MASK  # type: ignore[attr-defined]
    assert ctr.TCPChallengeACK == 1 and ctr.EstabResets == 0  # type: ignore[attr-defined]
    assert ack.notes == ["challenge ACK: RST in window but SEQ != RCV.NXT (+1)"]  # a capture comment


def test_rst_outside_window_is_dropped_silently() -> None:
    for offset in (2**30, -(2**30), -1):
        server, out, ctr = _rst_to_server(offset)
        assert server.state == TcpState.ESTABLISHED, offset  # type: ignore[attr-defined]
        assert out == [], offset
        assert ctr.TCPChallengeACK == 0  # type: ignore[attr-defined]


def test_rst_at_rcv_nxt_minus_one_resets_in_close_wait_with_epipe() -> None:
    server, out, _ = _rst_to_server(-1, "close_wait")
    assert server.state == TcpState.CLOSE and server.error == errno.EPIPE  # type: ignore[attr-defined]
    assert out == []


def test_challenge_acks_are_rate_limited_per_socket() -> None:
    _a, b, client, server = established()
    rst = Packet(A, B, TCP, client.lport, 80, int(R), (server.rcv_nxt + 5) & MASK, 0, 0, 0)
    b.input(rst.copy(), 1_000_000_000)
    b.input(rst.copy(), 1_100_000_000)  # 100 ms later: skipped (tcp_invalid_ratelimit 500 ms)
    b.input(rst.copy(), 1_600_000_000)
    assert len(take(b)) == 2
    assert b.ctr.TCPChallengeACK == 2 and b.ctr.TCPACKSkippedChallenge == 1


def test_host_wide_challenge_ack_limit_before_6_0() -> None:
    cfg = TcpConfig(challenge_ack_limit=1)
    a, b, _client, _server = established(cfg)
    for i in range(2):  # two sockets would each pass their own limit; the host allows one per second
        client2 = a.connect(A, B, 80, 0)
        shuttle(a, b)
        srv = b.conns[(B, 80, A, client2.lport)]
        rst = Packet(A, B, TCP, client2.lport, 80, int(R), (srv.rcv_nxt + 5) & MASK, 0, 0, 0)
        b.input(rst, 5_000_000_000 + i)
    assert b.ctr.TCPChallengeACK == 1


def test_syn_on_established_connection_gets_challenge_ack() -> None:
    _a, b, client, server = established()
    syn = Packet(A, B, TCP, client.lport, 80, int(S), 12345, 0, 1000, 0)
    b.input(syn, 10**9)
    (ack,) = take(b)
    assert ack.flags == AK and ack.ack == server.rcv_nxt & MASK
    assert b.ctr.TCPSYNChallenge == 1 and b.ctr.TCPChallengeACK == 1
    assert server.state == TcpState.ESTABLISHED


def test_rst_in_syn_sent_needs_acceptable_ack() -> None:
    a, _ = stacks()
    conn = a.connect(A, B, 80, 0)
    conn.app = object()
    take(a)
    bad = Packet(B, A, TCP, 80, conn.lport, int(R | AK), 0, (conn.iss + 7) & MASK, 0, 0)
    a.input(bad, 0)
    assert conn.state == TcpState.SYN_SENT
    good = Packet(B, A, TCP, 80, conn.lport, int(R | AK), 0, (conn.iss + 1) & MASK, 0, 0)
    a.input(good, 0)
    assert conn.state == TcpState.CLOSE and conn.error == errno.ECONNREFUSED
    assert a.ctr.AttemptFails == 1


def test_out_of_window_data_gets_a_duplicate_ack_unlimited() -> None:
    _a, b, client, server = established()
    seq = (server.rcv_nxt - 5000) & MASK
    old = Packet(A, B, TCP, client.lport, 80, int(AK), seq, server.snd_nxt & MASK, 100, 100)
    b.input(old.copy(), 1)
    b.input(old.copy(), 2)
    acks = take(b)
    assert len(acks) == 2 and all(p.ack == server.rcv_nxt & MASK for p in acks)
