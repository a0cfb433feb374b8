"""Retransmission timeout, Karn's rule and backoff; fast retransmit without SACK (NewReno)."""

from __future__ import annotations

from kplab.sim import MS, SECOND
from kplab.tcp import TcpConfig

from .direct import A, B, established, stacks, take


def test_rto_backoff_and_karn_no_sample_from_retransmissions() -> None:
    a, b, client, server = established()  # handshake in zero time: SRTT 1 ns, RTO = rto_min
    rto_min = TcpConfig().rto_min_ns
    assert server.srtt_ns == 1 and server.rto_ns == rto_min + 1
    b.send(server, 3000, 0)
    lost = take(b)
    assert len(lost) == 3 and server.next_timer_ns() == rto_min + 1
    t = rto_min + 1
    b.on_timer(server, t)
    (again,) = take(b)  # cwnd 1 after the timeout: only the head goes again
    assert again.seq == lost[0].seq and b.ctr.TCPTimeouts == 1 and b.ctr.RetransSegs == 1
    assert server.rto_ns == 2 * (rto_min + 1) and server.cwnd == 1
    a.input(again, t + 10 * MS)
    b.input(take(a)[0], t + 20 * MS)
    assert server.srtt_ns == 1, "an ACK of retransmitted data gives no RTT sample (Karn)"
    assert server.rto_ns == 2 * (rto_min + 1), "the backed-off RTO stays until a valid sample"
    retransmitted = take(b)
    assert [p.seq for p in retransmitted] == [lost[1].seq, lost[2].seq]  # slow start: cwnd 2
    for p in retransmitted:
        a.input(p, t + 30 * MS)
    for p in take(a):
        b.input(p, t + 40 * MS)
    assert server.snd_una == server.snd_nxt and server.srtt_ns == 1
    b.send(server, 100, t + 50 * MS)
    fresh = take(b)
    a.input(fresh[0], t + 60 * MS)
    a.on_timer(client, t + 60 * MS + TcpConfig().delack_ns)
    b.input(take(a)[0], t + 110 * MS)
    sample = 60 * MS
    assert server.srtt_ns == 1 + (sample - 1) // 8  # new data: a valid sample, RTO recomputed
    assert server.rto_ns == server.srtt_ns + max(4 * server.rttvar_ns, rto_min)
    assert b.ctr.TCPTimeouts == 1 and b.ctr.TCPSlowStartRetrans == 3


def test_handshake_rtt_and_fallback_after_syn_retransmission() -> None:
    a, b = stacks()
    b.listen(B, 80)
    client = a.connect(A, B, 80, 0)
    take(a)  # the first SYN is lost
    a.on_timer(client, SECOND)
    b.input(take(a)[0], SECOND + 5 * MS)
    a.input(take(b)[0], SECOND + 10 * MS)
    b.input(take(a)[0], SECOND + 15 * MS)
    server = b.conns[(B, 80, A, client.lport)]
    assert client.srtt_ns == 0 and client.rto_ns == 3 * SECOND  # TCP_TIMEOUT_FALLBACK
    assert server.srtt_ns == 10 * MS  # SYN-ACK to ACK


def test_newreno_fast_retransmit_after_three_dupacks() -> None:
    cfg = TcpConfig(sack=False, congestion="reno")
    a, b, _client, server = established(cfg)
    b.send(server, 10 * 1460, 0)
    segs = take(b)
    assert len(segs) == 10
    for p in segs[1:5]:  # the first segment is lost (and the 6th, see below)
        a.input(p, MS)
    dupacks = take(a)
    assert len(dupacks) == 4 and len({p.ack for p in dupacks}) == 1
    for p in dupacks[:2]:
        b.input(p, 2 * MS)
    assert take(b) == [] and b.ctr.TCPRenoRecovery == 0
    b.input(dupacks[2], 2 * MS)
    (fast,) = take(b)
    assert fast.seq == segs[0].seq and b.ctr.TCPRenoRecovery == 1 and b.ctr.TCPFastRetrans == 1
    # PRR: cwnd = in flight (10 sent - 3 dupACKed - 1 lost) + the forced retransmission
    assert server.ssthresh == 5 and server.cwnd == 7
    b.input(dupacks[3], 3 * MS)
    assert take(b) == [], "in flight 6 > ssthresh 5: PRR sends ssthresh/prior_cwnd per delivery"
    a.input(fast, 4 * MS)
    (partial,) = take(a)  # the hole is filled up to the 6th segment, which was lost too
    assert partial.ack == segs[5].seq
    b.input(partial, 5 * MS)
    resent = take(b)
    assert resent[0].seq == segs[5].seq, "NewReno: a partial ACK retransmits the next hole"


def _acks_for_burst(cfg: TcpConfig, segments: int, read: bool) -> list[int]:
    """Raw window values of the ACKs the client sends for a burst of full segments."""
    a, b, client, server = established(cfg)
    b.send(server, segments * 1460, 0)
    windows: list[int] = []
    while burst := take(b):
        for p in burst:
            a.input(p, 0)
            if read:
                a.read(client, client.unread, 0)
            for ack in take(a):
                windows.append(ack.win)
                b.input(ack, 0)
    return windows


def test_default_ack_policy_acks_every_second_segment_after_quick_acks() -> None:
    windows = _acks_for_burst(TcpConfig(rcvbuf_bytes=60_000), 60, read=False)
    assert 16 + 10 <= len(windows) < 45


def test_linux_ack_policy_holds_acks_while_the_window_shrinks() -> None:
    cfg = TcpConfig(rcvbuf_bytes=60_000, linux_ack_policy=True)
    a, b, client, server = established(cfg)
    b.send(server, 60 * 1460, 0)
    acks = []
    while burst := take(b):
        for p in burst:
            a.input(p, 0)
            for ack in take(a):
                acks.append(ack)
                b.input(ack, 0)
    # quick ACKs for the first data, then nothing while the unread data shrinks the window
    assert 16 <= len(acks) <= 22
    assert client.delack_at == TcpConfig().delack_ns
    a.on_timer(client, client.delack_at)
    (delayed,) = take(a)
    assert a.ctr.DelayedACKs == 1 and delayed.ack == client.rcv_nxt & 0xFFFFFFFF


def test_linux_ack_policy_acks_each_segment_while_the_window_grows() -> None:
    windows = _acks_for_burst(TcpConfig(linux_ack_policy=True), 40, read=True)
    assert len(windows) == 40 and windows == sorted(windows)
