"""Processing the ACK field of an incoming segment (`tcp_ack`): window update, SACK scoreboard,
RTT estimation (Jacobson/Karels with Karn's rule), and loss recovery (`tcp_fastretrans_alert`:
NewReno, with SACK-based loss marking as in RFC 6675).
"""

from __future__ import annotations

from kplab.packet import Packet
from kplab.tcp.cc import reno_cong_avoid, reno_ssthresh
from kplab.tcp.conn import MASK, Connection, unwrap
from kplab.tcp.state import CaState, TcpState

DUPTHRESH = 3


def process_ack(c: Connection, p: Packet, seq: int, now_ns: int) -> bool:
    """`tcp_ack`. False means: discard the segment (ACK of unsent data, or too old)."""
    if not c.packets_out and not p.sack and p.ack == c.snd_una & MASK:
        _update_window(c, p, seq, c.snd_una)  # nothing in flight: the pure receiver's fast path
        return True
    ack = unwrap(p.ack, c.snd_una)
    if ack > c.snd_nxt:
        if c.state != TcpState.ESTABLISHED:
            c.send_challenge_ack(now_ns)
        return False
    if ack < c.snd_una:
        if ack < c.snd_una - c.max_window:
            c.send_challenge_ack(now_ns)
            return False
        return True  # old ACK: data in it is still processed
    prior_in_flight = c.packets_out - (c.sacked_out + c.lost_out) + c.retrans_out
    _update_window(c, p, seq, ack)
    sack_sent = _sacktag(c, p.sack) if p.sack and c.sack_ok else -1
    acked = _clean_rtx_queue(c, ack, now_ns) if ack > c.snd_una else 0
    if sack_sent >= 0 and not acked:
        rtt_sample(c, now_ns - sack_sent)
    if acked:
        c.probes_out = 0
    elif p.length == 0 and c.packets_out and not p.flags & 0x03:
        c.dupacks += 1
    _fastretrans_alert(c, acked, prior_in_flight)
    return True


def _update_window(c: Connection, p: Packet, seq: int, ack: int) -> None:
    """`tcp_ack_update_window` with `tcp_may_update_window`."""
    nwin = p.win << c.snd_wscale
    if ack > c.snd_una or seq > c.snd_wl1 or (seq == c.snd_wl1 and nwin > c.snd_wnd):
        c.snd_wnd = nwin
        c.snd_wl1 = seq
        if nwin > c.max_window:
            c.max_window = nwin


def _sacktag(c: Connection, blocks: tuple[tuple[int, int], ...]) -> int:
    """`tcp_sacktag_write_queue`: mark queued segments covered by a SACK block. Returns the send
    time of the oldest newly SACKed, never retransmitted segment (an RTT sample), or -1."""
    una = c.snd_una
    sample = -1
    for wire_start, wire_end in blocks:
        start = unwrap(wire_start, una)
        end = unwrap(wire_end, una)
        if end <= start or end <= una or end > c.snd_nxt:
            continue
        for seg in c.sb:
            if seg.start >= end:
                break
            if seg.sacked or seg.start < start or seg.end > end:
                continue
            seg.sacked = True
            c.sacked_out += 1
            if not seg.retrans and (sample < 0 or seg.sent_ns < sample):
                sample = seg.sent_ns
            if seg.lost:
                seg.lost = False
                c.lost_out -= 1
            if seg.retrans:
                seg.retrans = False
                c.retrans_out -= 1
        if end > c.highest_sack:
            c.highest_sack = end
    return sample


def _clean_rtx_queue(c: Connection, ack: int, now_ns: int) -> int:
    """`tcp_clean_rtx_queue`: drop acknowledged segments, take an RTT sample; packets acked."""
    sb = c.sb
    acked = 0
    sample_sent = -1
    while sb and sb[0].end <= ack:
        seg = sb.popleft()
        acked += 1
        if seg.sacked:
            c.sacked_out -= 1
        elif seg.retrans:
            c.retrans_out -= 1
        if seg.lost:
            c.lost_out -= 1
        if not seg.retrans and sample_sent < 0:
            sample_sent = seg.sent_ns
    if sb and sb[0].start < ack:
        sb[0].start = ack  # partially acknowledged
    c.packets_out -= acked
    c.snd_una = ack
    c.backoff = 0
    c.retransmits = 0
    c.retrans_stamp = 0
    if sample_sent >= 0:
        rtt_sample(c, now_ns - sample_sent)
    c.rto_at = now_ns + c.rto_ns if c.packets_out else 0
    return acked


def rtt_sample(c: Connection, rtt_ns: int) -> None:
    """`tcp_rtt_estimator` + `tcp_set_rto`: RTO = SRTT + max(4*RTTVAR, rto_min)."""
    if rtt_ns <= 0:
        rtt_ns = 1
    if not c.srtt_ns:
        c.srtt_ns = rtt_ns
        c.rttvar_ns = rtt_ns >> 1
    else:
        c.rttvar_ns += (abs(c.srtt_ns - rtt_ns) - c.rttvar_ns) >> 2
        c.srtt_ns += (rtt_ns - c.srtt_ns) >> 3
    c.rto_ns = min(c.srtt_ns + max(c.rttvar_ns << 2, c.cfg.rto_min_ns), c.cfg.rto_max_ns)


def _fastretrans_alert(c: Connection, acked: int, prior_in_flight: int) -> None:
    """`tcp_fastretrans_alert`, simplified: enter/exit Recovery, mark losses, grow cwnd in Open."""
    state = c.ca_state
    if state >= CaState.RECOVERY and c.snd_una >= c.high_seq:
        if state == CaState.RECOVERY:
            c.cwnd = max(c.ssthresh, 2)
        c.ca_state = state = CaState.OPEN
        c.dupacks = 0
    if state == CaState.RECOVERY:
        if c.sack_ok:
            _mark_lost_by_sack(c)
        elif acked and c.sb and not c.sb[0].lost:
            _mark_head_lost(c)  # NewReno partial ACK
        return
    if state == CaState.LOSS:
        if acked:
            reno_cong_avoid(c, acked, True)
        return
    if c.dupacks >= DUPTHRESH or (c.sack_ok and c.sacked_out >= DUPTHRESH and c.sb and not c.sb[0].sacked):
        _enter_recovery(c)
        return
    if acked:
        cwnd_limited = prior_in_flight >= c.cwnd or (c.cwnd < c.ssthresh and c.cwnd < 2 * prior_in_flight)
        reno_cong_avoid(c, acked, cwnd_limited)


def _enter_recovery(c: Connection) -> None:
    """`tcp_enter_recovery`: halve the window, retransmit the first hole (via the lost mark)."""
    if c.sack_ok:
        c.ctr.TCPSACKRecovery += 1
    else:
        c.ctr.TCPRenoRecovery += 1
    c.ssthresh = reno_ssthresh(c)
    c.cwnd = c.ssthresh
    c.cwnd_cnt = 0
    c.ca_state = CaState.RECOVERY
    c.high_seq = c.snd_nxt
    _mark_head_lost(c)
    if c.sack_ok:
        _mark_lost_by_sack(c)


def _mark_head_lost(c: Connection) -> None:
    for seg in c.sb:
        if not seg.sacked:
            if not seg.lost and not seg.retrans:
                seg.lost = True
                c.lost_out += 1
            return


def _mark_lost_by_sack(c: Connection) -> None:
    """RFC 6675 IsLost: a hole with DUPTHRESH SACKed segments above it is lost."""
    sacked_above = 0
    for seg in reversed(c.sb):
        if seg.sacked:
            sacked_above += 1
        elif sacked_above >= DUPTHRESH and not seg.lost and not seg.retrans:
            seg.lost = True
            c.lost_out += 1
