"""Processing the ACK field of an incoming segment (`tcp_ack`): window update, SACK scoreboard,
RTT estimation (Jacobson/Karels with Karn's rule); loss recovery is in `kplab.tcp.recovery`.
"""

from __future__ import annotations

from kplab.packet import Packet
from kplab.tcp.conn import MASK, Connection, unwrap
from kplab.tcp.recovery import fastretrans_alert
from kplab.tcp.state import TcpState


def process_ack(c: Connection, p: Packet, seq: int, now_ns: int) -> bool:
    """`tcp_ack`. False means: discard the segment (ACK of unsent data, or too old)."""
    if not c.packets_out and not p.sack and p.ack == c.snd_una & MASK:
        _update_window(c, p, seq, c.snd_una)  # nothing in flight: the pure receiver's fast path
        return True
    ack = unwrap(p.ack, c.snd_una)
    if ack > c.snd_nxt:  # RFC 5961 5.2; older kernels drop it silently when ESTABLISHED
        if c.cfg.challenge_ack_unsent_data or c.state != TcpState.ESTABLISHED:
            c.send_challenge_ack(now_ns, "ACK of unsent data (SEG.ACK > SND.NXT)")
        return False
    if ack < c.snd_una:
        if ack < c.snd_una - min(c.max_window, c.snd_una - c.iss - 1):  # too old (bytes_acked bound)
            c.send_challenge_ack(now_ns, "ACK too old (below SND.UNA - window)")
            return False
        return True  # old ACK: data in it is still processed
    prior_in_flight = c.packets_out - (c.sacked_out + c.lost_out) + c.retrans_out
    window_update = _update_window(c, p, seq, ack)
    sack_sent = newly_sacked = -1
    if p.sack and c.sack_ok:
        sack_sent, newly_sacked = _sacktag(c, p.sack)
    acked = _clean_rtx_queue(c, ack, now_ns) if ack > c.snd_una else 0
    if sack_sent >= 0 and not acked:
        rtt_sample(c, now_ns - sack_sent)
    dupack = False
    if acked:
        c.probes_out = 0
    elif p.length == 0 and c.packets_out and not p.flags & 0x03 and not window_update:
        c.dupacks += 1
        dupack = True
    fastretrans_alert(c, acked, max(newly_sacked, 0), dupack, prior_in_flight, now_ns)
    return True


def _update_window(c: Connection, p: Packet, seq: int, ack: int) -> bool:
    """`tcp_ack_update_window` with `tcp_may_update_window`; True if it updated (FLAG_WIN_UPDATE)."""
    nwin = p.win << c.snd_wscale
    if ack > c.snd_una or seq > c.snd_wl1 or (seq == c.snd_wl1 and (nwin > c.snd_wnd or not nwin)):
        c.snd_wnd = nwin
        c.snd_wl1 = seq
        if nwin > c.max_window:
            c.max_window = nwin
        return True
    return False


def _sacktag(c: Connection, blocks: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """`tcp_sacktag_write_queue`: mark queued segments covered by a SACK block. Returns the send
    time of the oldest newly SACKed, never retransmitted segment (an RTT sample, or -1) and the
    number of newly SACKed segments."""
    una = c.snd_una
    sample = -1
    newly = 0
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
            newly += 1
            if not seg.retrans and not seg.retransmitted and (sample < 0 or seg.sent_ns < sample):
                sample = seg.sent_ns
            if seg.lost:
                seg.lost = False
                c.lost_out -= 1
            if seg.retrans:
                seg.retrans = False
                c.retrans_out -= 1
        if end > c.highest_sack:
            c.highest_sack = end
    return sample, newly


def _clean_rtx_queue(c: Connection, ack: int, now_ns: int) -> int:
    """`tcp_clean_rtx_queue`: drop acknowledged segments; packets acked. The RTT sample is the
    oldest newly acked, never SACKed segment, and none at all if the ACK covers retransmitted
    data (Karn's rule, FLAG_RETRANS_DATA_ACKED)."""
    sb = c.sb
    acked = 0
    sample_sent = -1
    retrans_acked = False
    while sb and sb[0].end <= ack:
        seg = sb.popleft()
        acked += 1
        if seg.sacked:
            c.sacked_out -= 1
        elif seg.retrans:
            c.retrans_out -= 1
        if seg.lost:
            c.lost_out -= 1
        if seg.retrans or seg.retransmitted:
            retrans_acked = True
        elif not seg.sacked and sample_sent < 0:
            sample_sent = seg.sent_ns
    if sb and sb[0].start < ack:
        sb[0].start = ack  # partially acknowledged
    c.packets_out -= acked
    c.snd_una = ack
    c.backoff = 0
    c.retransmits = 0
    c.retrans_stamp = 0
    if sample_sent >= 0 and not retrans_acked:
        rtt_sample(c, now_ns - sample_sent)
    c.rto_at = now_ns + c.rto_ns if c.packets_out else 0
    return acked


def rtt_sample(c: Connection, rtt_ns: int) -> None:
    """`tcp_rtt_estimator` + `tcp_set_rto`: RTO = SRTT + max(4*RTTVAR, rto_min)."""
    if rtt_ns <= 0:
        rtt_ns = 1
    if not c.min_rtt_ns or rtt_ns < c.min_rtt_ns:
        c.min_rtt_ns = rtt_ns
    if not c.srtt_ns:
        c.srtt_ns = rtt_ns
        c.rttvar_ns = rtt_ns >> 1
    else:
        err = c.srtt_ns - rtt_ns
        c.rttvar_ns += ((err if err >= 0 else -err) - c.rttvar_ns) >> 2
        c.srtt_ns += (rtt_ns - c.srtt_ns) >> 3
    c.rto_ns = min(c.srtt_ns + max(c.rttvar_ns << 2, c.cfg.rto_min_ns), c.cfg.rto_max_ns)
