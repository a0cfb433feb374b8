"""Loss recovery (`tcp_fastretrans_alert`): entering and leaving Recovery, marking losses
(NewReno partial ACKs; with SACK, RFC 6675's IsLost), Reno's duplicate-ACK accounting
(`tcp_add_reno_sack`), and Proportional Rate Reduction (RFC 6937, `tcp_cwnd_reduction`).
"""

from __future__ import annotations

from typing import Final

from kplab.tcp.cc import cong_avoid, ssthresh
from kplab.tcp.conn import Connection
from kplab.tcp.state import CaState

DUPTHRESH: Final = 3
_OPEN, _RECOVERY, _LOSS = CaState.OPEN, CaState.RECOVERY, CaState.LOSS  # bound once (Enum access is slow)


def fastretrans_alert(
    c: Connection, acked: int, newly_sacked: int, dupack: bool, prior_in_flight: int, now_ns: int
) -> None:
    """After an ACK: leave or enter Recovery, mark losses, reduce (PRR) or grow (Reno) cwnd."""
    delivered = acked + newly_sacked
    if not c.sack_ok:
        if dupack:
            delivered += _add_reno_sack(c)
        elif acked:
            _remove_reno_sacks(c, acked)
    state = c.ca_state
    if state >= _RECOVERY and c.snd_una >= c.high_seq:
        if state == _RECOVERY:
            c.cwnd = max(c.ssthresh, 2)  # tcp_end_cwnd_reduction
        c.ca_state = state = _OPEN
        c.dupacks = 0
        if not c.sack_ok:
            c.sacked_out = 0
    if state == _RECOVERY:
        if c.sack_ok:
            _mark_lost_by_sack(c)
        elif acked and c.sb and not c.sb[0].lost:
            mark_head_lost(c)  # NewReno partial ACK
        _cwnd_reduction(c, delivered)
        return
    if state == _LOSS:
        if acked:
            cong_avoid(c, acked, True, now_ns)
        return
    if c.dupacks >= DUPTHRESH or (c.sack_ok and c.sacked_out >= DUPTHRESH and c.sb and not c.sb[0].sacked):
        _enter_recovery(c)
        _cwnd_reduction(c, delivered)
        return
    if acked:
        cwnd_limited = prior_in_flight >= c.cwnd or (c.cwnd < c.ssthresh and c.cwnd < 2 * prior_in_flight)
        cong_avoid(c, acked, cwnd_limited, now_ns)


def _add_reno_sack(c: Connection) -> int:
    """`tcp_add_reno_sack` + `tcp_limit_reno_sacked`: without SACK, a duplicate ACK stands for one
    segment that left the network. Returns the segments newly counted as delivered."""
    prior = c.sacked_out
    holes = min(max(c.lost_out, 1), c.packets_out)
    c.sacked_out = max(min(c.sacked_out + 1, c.packets_out - holes), 0)
    return c.sacked_out - prior


def _remove_reno_sacks(c: Connection, acked: int) -> None:
    """`tcp_remove_reno_sacks`: one ACKed packet filled the hole, the rest ate duplicate ACKs."""
    c.sacked_out = 0 if acked - 1 >= c.sacked_out else c.sacked_out - (acked - 1)


def _enter_recovery(c: Connection) -> None:
    """`tcp_enter_recovery` + `tcp_init_cwnd_reduction`: ssthresh halves; PRR takes cwnd there."""
    if c.sack_ok:
        c.ctr.TCPSACKRecovery += 1
    else:
        c.ctr.TCPRenoRecovery += 1
    c.prior_cwnd = c.cwnd
    c.ssthresh = ssthresh(c)
    c.prr_delivered = c.prr_out = 0
    c.cwnd_cnt = 0
    c.ca_state = CaState.RECOVERY
    c.high_seq = c.snd_nxt
    mark_head_lost(c)
    if c.sack_ok:
        _mark_lost_by_sack(c)


def _cwnd_reduction(c: Connection, delivered: int) -> None:
    """`tcp_cwnd_reduction` (PRR, RFC 6937): send in proportion to what was delivered, down to
    ssthresh; the first retransmission always goes out."""
    if delivered <= 0 or not c.prior_cwnd:
        return
    c.prr_delivered += delivered
    pipe = c.packets_out - (c.sacked_out + c.lost_out) + c.retrans_out
    if pipe > c.ssthresh:
        sndcnt = (c.ssthresh * c.prr_delivered + c.prior_cwnd - 1) // c.prior_cwnd - c.prr_out
    else:
        sndcnt = min(max(c.prr_delivered - c.prr_out, delivered), c.ssthresh - pipe)
    sndcnt = max(sndcnt, 0 if c.prr_out else 1)
    c.cwnd = max(pipe + sndcnt, 1)


def mark_head_lost(c: Connection) -> None:
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
