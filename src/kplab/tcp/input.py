"""A segment arrives on a connection (`tcp_rcv_state_process`, `tcp_rcv_established`,
`tcp_rcv_synsent_state_process`, `tcp_validate_incoming`, `tcp_timewait_state_process`).

The RST rules the seed's failure rests on (RFC 5961 as Linux implements it):
- sequence not acceptable (`tcp_sequence`): a RST is dropped silently, except SEQ == RCV.NXT-1
  in CLOSE_WAIT, LAST_ACK or CLOSING (`tcp_reset_check`), which resets;
- acceptable and SEQ == RCV.NXT (or the right edge of our highest SACK block): reset;
- acceptable but inexact: a challenge ACK, rate limited (`tcp_send_challenge_ack`).
"""

from __future__ import annotations

from typing import Final

from kplab.packet import Packet
from kplab.tcp.ack import process_ack, rtt_sample
from kplab.tcp.conn import ACK, FIN, HALF, MASK, RST, SYN, Connection, initial_window, unwrap
from kplab.tcp.output import push
from kplab.tcp.recv import ACK_DELAYED, ACK_NOW, data_queue
from kplab.tcp.state import (
    ECONNREFUSED,
    ECONNRESET,
    EPIPE,
    RECEIVING,
    TcpEvent,
    TcpState,
)

TIMEOUT_FALLBACK_NS: Final = 3_000_000_000  # TCP_TIMEOUT_FALLBACK
TIMEOUT_MIN_NS: Final = 2_000_000  # TCP_TIMEOUT_MIN (2 jiffies at HZ=1000)
_RESET_CHECK_STATES: Final = (TcpState.CLOSE_WAIT, TcpState.LAST_ACK, TcpState.CLOSING)
# enum members bound once: attribute access on an Enum class costs a descriptor call per use
_ESTABLISHED, _SYN_SENT, _SYN_RECV = TcpState.ESTABLISHED, TcpState.SYN_SENT, TcpState.SYN_RECV
_TIME_WAIT, _CLOSE = TcpState.TIME_WAIT, TcpState.CLOSE


def segment_arrives(c: Connection, p: Packet, now_ns: int) -> None:
    state = c.state
    if state == _ESTABLISHED or (state != _SYN_SENT and state != _TIME_WAIT and state != _CLOSE):
        _synchronized(c, p, now_ns)
    elif state == _SYN_SENT:
        _synsent(c, p, now_ns)
    elif state == _TIME_WAIT:
        _timewait(c, p, now_ns)


def _synchronized(c: Connection, p: Packet, now_ns: int) -> None:
    flags = p.flags
    rcv_nxt = c.rcv_nxt
    seq = rcv_nxt + ((p.seq - rcv_nxt + HALF) & MASK) - HALF  # unwrap, inlined
    # header prediction: in-order, no RST/SYN -> the sequence checks cannot fail
    if (seq != rcv_nxt or flags & (RST | SYN)) and not _validate_incoming(c, p, seq, now_ns):
        return
    if not flags & ACK:
        return
    if c.state == _SYN_RECV and not _complete_passive_open(c, p, now_ns):
        return
    if not process_ack(c, p, seq, now_ns):
        return
    if c.fin_sent and c.snd_una == c.snd_nxt and not _our_fin_acked(c, now_ns):
        return
    ack = 0
    if p.length or flags & FIN:
        if c.state in RECEIVING:
            if c.app_closed and p.length and seq + p.length > c.rcv_nxt:
                _abort_on_data(c)
                return
            ack = data_queue(c, p, seq, now_ns)
        else:
            ack = ACK_NOW  # data or FIN after the peer's FIN: just acknowledge
    sent = push(c, now_ns)
    if ack == ACK_NOW and not sent:
        c.send_ack()
    elif ack == ACK_DELAYED and not sent and not c.delack_at:
        c.delack_at = now_ns + c.cfg.delack_ns


def _validate_incoming(c: Connection, p: Packet, seq: int, now_ns: int) -> bool:
    """`tcp_validate_incoming`: sequence check, RST acceptance, SYN in a synchronized state."""
    flags = p.flags
    end = seq + p.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    if flags & RST:
        end = seq
    window = max(c.rcv_wup + c.rcv_wnd - c.rcv_nxt, 0)
    if end < c.rcv_wup or seq > c.rcv_nxt + window:  # `tcp_sequence`
        if flags & RST:
            if seq == c.rcv_nxt - 1 and c.state in _RESET_CHECK_STATES:
                tcp_reset(c)
            return False
        if flags & SYN:
            c.ctr.TCPSYNChallenge += 1
            c.send_challenge_ack(now_ns, "SYN outside the window")
        elif c.oow_rate_limited(now_ns, p.length > 0):
            c.ctr.TCPACKSkippedSeq += 1
        else:
            c.send_ack()
        return False
    if flags & RST:
        if seq == c.rcv_nxt or (c.ooo and c.sack_ok and seq == max(e for _s, e in c.ooo)):
            tcp_reset(c)
        else:
            c.send_challenge_ack(now_ns, f"RST in window but SEQ != RCV.NXT ({(seq - c.rcv_nxt):+d})")
        return False
    if flags & SYN:
        if c.state == TcpState.SYN_RECV and seq == c.rcv_nxt - 1:
            c.send_syn(with_ack=True)  # retransmitted SYN: SYN-ACK again
            return False
        c.ctr.TCPSYNChallenge += 1
        c.send_challenge_ack(now_ns, "SYN on a synchronized connection")
        return False
    return True


def tcp_reset(c: Connection) -> None:
    """`tcp_reset`: the peer reset the connection; the error depends on the state."""
    if c.state == TcpState.SYN_SENT:
        error = ECONNREFUSED
    elif c.state == TcpState.CLOSE_WAIT:
        error = EPIPE
    elif c.state == TcpState.SYN_RECV:
        c.ctr.EmbryonicRsts += 1
        error = ECONNRESET
    else:
        error = ECONNRESET
    c.done(error)


def _complete_passive_open(c: Connection, p: Packet, now_ns: int) -> bool:
    """The ACK of our SYN-ACK (`tcp_check_req` + `tcp_child_process`)."""
    ack = unwrap(p.ack, c.snd_una)
    if ack != c.iss + 1:
        c.stack.send_reset_for(p)
        return False
    c.snd_una = c.snd_nxt = c.write_end = c.snd_sml = c.high_seq = c.highest_sack = ack
    c.snd_wl1 = unwrap(p.seq, c.rcv_nxt)
    c.snd_wnd = c.max_window = p.win << c.snd_wscale
    c.set_state(TcpState.ESTABLISHED)
    c.ctr.PassiveOpens += 1
    _handshake_rtt(c, now_ns)
    c.stack.accepted(c)
    return True


def _handshake_rtt(c: Connection, now_ns: int) -> None:
    """RTT from our SYN or SYN-ACK to its ACK (`tcp_synack_rtt_meas`); if it was retransmitted
    there is no sample and the RTO falls back to 3 s (RFC 6298 5.7, `tcp_init_metrics`)."""
    if not c.retransmits:
        rtt_sample(c, now_ns - (c.rto_at - c.rto_ns))
    else:
        c.rto_ns = TIMEOUT_FALLBACK_NS
    c.rto_at = 0
    c.retransmits = c.backoff = 0


def _our_fin_acked(c: Connection, now_ns: int) -> bool:
    """FIN_WAIT1 -> FIN_WAIT2, CLOSING -> TIME_WAIT, LAST_ACK -> CLOSE. False: stop processing."""
    state = c.state
    if state == TcpState.FIN_WAIT1:
        c.set_state(TcpState.FIN_WAIT2)
        if c.app_closed:
            c.tw_at = now_ns + c.cfg.fin_timeout_ns
    elif state == TcpState.CLOSING:
        c.enter_time_wait(now_ns)
        return False
    elif state == TcpState.LAST_ACK:
        c.done(0)
        return False
    return True


def _abort_on_data(c: Connection) -> None:
    """Data for a socket the application has closed: reset (LINUX_MIB_TCPABORTONDATA)."""
    c.ctr.TCPAbortOnData += 1
    c.send_active_reset("data for a closed socket")
    c.done(0)


def _synsent(c: Connection, p: Packet, now_ns: int) -> None:
    """`tcp_rcv_synsent_state_process`."""
    flags = p.flags
    if flags & ACK:
        ack = unwrap(p.ack, c.snd_una)
        if ack <= c.iss or ack > c.snd_nxt:
            if not c.retransmits:  # a stale peer may have ignored us: SYN again very soon
                c.rto_at = now_ns + TIMEOUT_MIN_NS
            if not flags & RST:
                c.stack.send_reset_for(p)
            return
        if flags & RST:
            tcp_reset(c)
            return
    elif flags & RST:
        return
    if not flags & SYN or not flags & ACK:
        return  # simultaneous open is not modelled
    negotiate(c, p)
    c.rcv_nxt = c.rcv_wup = p.seq + 1
    c.snd_una = c.snd_nxt = c.write_end = c.snd_sml = c.high_seq = c.highest_sack = c.iss + 1
    c.snd_wl1 = p.seq
    c.snd_wnd = c.max_window = p.win
    _handshake_rtt(c, now_ns)
    c.set_state(TcpState.ESTABLISHED)
    if c.app is not None:
        c.events.append((TcpEvent.CONNECTED, c))
    if not push(c, now_ns):
        c.send_ack()


def negotiate(c: Connection, p: Packet) -> None:
    """Options of the peer's SYN: MSS, window scale (both sides or neither), SACK-permitted."""
    cfg = c.cfg
    if p.mss:
        c.mss = min(cfg.mss, p.mss)
    if p.wscale is not None and cfg.window_scaling:
        c.snd_wscale = min(p.wscale, 14)
        c.rcv_wscale = cfg.wscale
    c.sack_ok = bool(p.sackok and cfg.sack)
    c.rcv_wnd = initial_window(cfg)


def _timewait(c: Connection, p: Packet, now_ns: int) -> None:
    """`tcp_timewait_state_process`: a RST kills TIME_WAIT (tcp_rfc1337=0); a retransmitted FIN is
    acknowledged again and restarts the timer; anything else gets an ACK."""
    flags = p.flags
    if flags & RST:
        c.done(0)
        return
    seq = unwrap(p.seq, c.rcv_nxt)
    if flags & FIN and seq + p.length + 1 == c.rcv_nxt:
        c.tw_at = now_ns + c.cfg.timewait_ns
    c.send_ack()
