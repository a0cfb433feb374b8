"""The send side: pushing new data and retransmissions (`tcp_write_xmit`,
`tcp_xmit_retransmit_queue`), and the retransmission, probe and write timeouts.

The amount in flight is Linux's `tcp_packets_in_flight`: packets_out - (sacked_out + lost_out)
+ retrans_out, in packets; new data goes out while it is below cwnd and the peer's window.
"""

from __future__ import annotations

from typing import Final

from kplab.tcp.cc import on_loss_state, ssthresh
from kplab.tcp.conn import ACK, FIN, PSH, Connection, Seg
from kplab.tcp.state import ETIMEDOUT, SENDING, CaState, TcpState

_RECOVERY: Final = CaState.RECOVERY  # bound once (Enum attribute access is slow)


def in_flight(c: Connection) -> int:
    return c.packets_out - (c.sacked_out + c.lost_out) + c.retrans_out


def push(c: Connection, now_ns: int) -> bool:
    """Send what cwnd and the peer's window allow; True if any segment left."""
    if c.state not in SENDING:
        return False
    sent = False
    if c.lost_out > c.retrans_out:
        sent = _retransmit_lost(c, now_ns)
    mss = c.mss
    while True:
        avail = c.write_end - c.snd_nxt
        if avail <= 0 or c.packets_out - (c.sacked_out + c.lost_out) + c.retrans_out >= c.cwnd:
            break
        room = c.snd_una + c.snd_wnd - c.snd_nxt
        size = min(mss, avail, room)
        if size <= 0:
            break
        last = size == avail
        if size < mss and c.packets_out and c.snd_sml > c.snd_una and not (last and c.fin_queued):
            break  # Nagle, Minshall's variant (`tcp_nagle_check`)
        _send_new(c, size, last and c.fin_queued, now_ns)
        sent = True
    if c.fin_queued and not c.fin_sent and c.snd_nxt == c.write_end and c.packets_out < c.cwnd:
        _send_new(c, 0, True, now_ns)
        sent = True
    if sent:
        c.persist_at = 0
    if c.packets_out:
        if not c.rto_at:
            c.rto_at = now_ns + c.rto_ns
    elif c.write_end > c.snd_nxt and not c.persist_at:
        c.persist_at = now_ns + min(max(c.rto_ns, c.cfg.rto_min_ns) << c.backoff, c.cfg.rto_max_ns)
    return sent


def _send_new(c: Connection, size: int, fin: bool, now_ns: int) -> None:
    start = c.snd_nxt
    end = start + size + (1 if fin else 0)
    c.sb.append(Seg(start, end, now_ns, fin))
    c.packets_out += 1
    if c.ca_state == _RECOVERY:
        c.prr_out += 1
    c.snd_nxt = end
    if size < c.mss:
        c.snd_sml = end
    flags = (PSH if start + size == c.write_end and size else 0) | (FIN if fin else 0)
    if fin:
        c.fin_sent = True
    c.emit(flags, start, size)


def _retransmit_lost(c: Connection, now_ns: int) -> bool:
    """`tcp_xmit_retransmit_queue`: lost, not yet retransmitted segments, oldest first."""
    sent = False
    for seg in c.sb:
        if c.packets_out - (c.sacked_out + c.lost_out) + c.retrans_out >= c.cwnd:
            break
        if seg.lost and not seg.retrans and not seg.sacked:
            retransmit(c, seg, now_ns)
            sent = True
    return sent


def retransmit(c: Connection, seg: Seg, now_ns: int) -> None:
    """`tcp_retransmit_skb` for one queued segment (Karn: it no longer yields RTT samples)."""
    if not seg.retrans:
        seg.retrans = True
        c.retrans_out += 1
    seg.retransmitted = True
    if c.ca_state == CaState.RECOVERY:
        c.prr_out += 1
    if not c.retrans_stamp:
        c.retrans_stamp = seg.sent_ns
    seg.sent_ns = now_ns
    c.ctr.RetransSegs += 1
    if c.ca_state == CaState.LOSS:
        c.ctr.TCPSlowStartRetrans += 1
    else:
        c.ctr.TCPFastRetrans += 1
    length = seg.end - seg.start - (1 if seg.fin else 0)
    c.emit(ACK | (FIN if seg.fin else 0), seg.start, length)


def model_timeout_ns(c: Connection, boundary: int, base_ns: int) -> int:
    """`tcp_model_timeout`: how long `boundary` exponential backoffs from `base_ns` last."""
    rto_max = c.cfg.rto_max_ns
    linear = (rto_max // base_ns).bit_length() - 1
    if boundary <= linear:
        return ((2 << boundary) - 1) * base_ns
    return ((2 << linear) - 1) * base_ns + (boundary - linear) * rto_max


def enter_loss(c: Connection) -> None:
    """`tcp_enter_loss`: every unSACKed segment is lost; slow start again from one packet."""
    state = c.ca_state
    if state < CaState.CWR or c.high_seq <= c.snd_una or (state == CaState.LOSS and not c.retransmits):
        c.ssthresh = ssthresh(c)
    on_loss_state(c)
    c.cwnd = 1
    c.cwnd_cnt = 0
    c.ca_state = CaState.LOSS
    c.high_seq = c.snd_nxt
    c.dupacks = 0
    lost = 0
    for seg in c.sb:
        seg.retrans = False
        if not seg.sacked:
            seg.lost = True
            lost += 1
    c.lost_out = lost
    c.retrans_out = 0
    if not c.sack_ok:
        c.sacked_out = 0  # tcp_reset_reno_sack


def retransmit_timer(c: Connection, now_ns: int) -> None:
    """`tcp_retransmit_timer` (with `tcp_write_timeout`)."""
    cfg = c.cfg
    if c.state in (TcpState.SYN_SENT, TcpState.SYN_RECV):
        limit = cfg.syn_retries if c.state == TcpState.SYN_SENT else cfg.synack_retries
        if c.retransmits >= limit:
            c.done(ETIMEDOUT if c.state == TcpState.SYN_SENT else 0)
            return
        c.ctr.TCPTimeouts += 1
        c.ctr.RetransSegs += 1
        c.send_syn(with_ack=c.state == TcpState.SYN_RECV)
        _backoff(c, now_ns)
        return
    if not c.packets_out:
        return
    if c.retrans_stamp and now_ns - c.retrans_stamp >= model_timeout_ns(c, cfg.retries2, cfg.rto_min_ns):
        c.ctr.TCPAbortOnTimeout += 1
        c.done(ETIMEDOUT)
        return
    c.ctr.TCPTimeouts += 1
    enter_loss(c)
    retransmit(c, c.sb[0], now_ns)
    _backoff(c, now_ns)


def _backoff(c: Connection, now_ns: int) -> None:
    c.retransmits += 1
    c.backoff += 1
    c.rto_ns = min(c.rto_ns << 1, c.cfg.rto_max_ns)
    c.rto_at = now_ns + c.rto_ns


def probe_timer(c: Connection, now_ns: int) -> None:
    """`tcp_probe_timer` / `tcp_write_wakeup`: a zero-window probe, an ACK at SND.UNA-1."""
    if c.packets_out or c.write_end <= c.snd_nxt or c.state not in SENDING:
        c.probes_out = 0
        return
    if c.snd_una + c.snd_wnd > c.snd_nxt:
        push(c, now_ns)
        return
    if c.probes_out > c.cfg.retries2:
        c.ctr.TCPAbortOnTimeout += 1
        c.done(ETIMEDOUT)
        return
    c.probes_out += 1
    c.emit(0, c.snd_una - 1, 0)
    c.backoff = min(c.backoff + 1, 20)
    base = max(c.rto_ns, c.cfg.rto_min_ns)
    c.persist_at = now_ns + min(base << c.backoff, c.cfg.rto_max_ns)
