"""Congestion control, in packets like Linux: NewReno (`tcp_reno_*`) and CUBIC (`tcp_cubic.c`,
Linux's default; without HyStart). `TcpConfig.congestion` picks one per host.

CUBIC grows the window as W(t) = C (t - K)^3 + W_max after a reduction to beta * W_max, with
C: Final = 0.4 and beta = 717/1024, plus the TCP-friendly region. Time is kept in integer
milliseconds and cube roots are exact integers, so runs stay bit-for-bit reproducible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from kplab.tcp.conn import Connection

CUBIC_BETA: Final = 717  # / 1024
BETA_SCALE: Final = 8 * (1024 + CUBIC_BETA) // 3 // (1024 - CUBIC_BETA)  # Reno-equivalent growth
_CUBE_DIV: Final = 5 * 10**9 // 2  # C = 0.4 with t in ms: 0.4 * t_ms**3 / 1e9 == t_ms**3 // 2.5e9


def ssthresh(c: Connection) -> int:
    """ssthresh after a loss: `tcp_reno_ssthresh` or `bictcp_recalc_ssthresh`."""
    if c.cfg.congestion != "cubic":
        return max(c.cwnd >> 1, 2)
    c.cubic_epoch_ns = 0
    if c.cwnd < c.cubic_last_max and c.cfg.cubic_fast_convergence:
        c.cubic_last_max = c.cwnd * (1024 + CUBIC_BETA) // (2 * 1024)
    else:
        c.cubic_last_max = c.cwnd
    return max(c.cwnd * CUBIC_BETA // 1024, 2)


def on_loss_state(c: Connection) -> None:
    """Entering Loss (a retransmission timeout): CUBIC forgets its epoch (`bictcp_state`)."""
    c.cubic_epoch_ns = 0
    c.cubic_last_max = 0


def cong_avoid(c: Connection, acked: int, cwnd_limited: bool, now_ns: int) -> None:
    """`tcp_reno_cong_avoid` / `cubictcp_cong_avoid`: slow start, then additive increase."""
    if not cwnd_limited:
        return
    if c.cwnd < c.ssthresh:
        grown = min(c.cwnd + acked, c.ssthresh)
        acked -= grown - c.cwnd
        c.cwnd = grown
        if not acked:
            return
    per_packet = _cubic_cnt(c, acked, now_ns) if c.cfg.congestion == "cubic" else c.cwnd
    _cong_avoid_ai(c, per_packet, acked)
    c.cwnd = min(c.cwnd, c.cfg.max_cwnd)


def _cong_avoid_ai(c: Connection, w: int, acked: int) -> None:
    """`tcp_cong_avoid_ai`: one more packet of cwnd per `w` packets acknowledged."""
    if c.cwnd_cnt >= w:
        c.cwnd_cnt = 0
        c.cwnd += 1
    c.cwnd_cnt += acked
    if c.cwnd_cnt >= w:
        delta = c.cwnd_cnt // w
        c.cwnd_cnt -= delta * w
        c.cwnd += delta


def _icbrt(n: int) -> int:
    """Integer cube root (floor) of n >= 0."""
    if n <= 0:
        return 0
    x = 1 << ((n.bit_length() + 2) // 3)
    while True:
        y = (2 * x + n // (x * x)) // 3
        if y >= x:
            break
        x = y
    while x * x * x > n:
        x -= 1
    while (x + 1) ** 3 <= n:
        x += 1
    return x


def _cubic_cnt(c: Connection, acked: int, now_ns: int) -> int:
    """`bictcp_update`: packets to ACK per one packet of cwnd growth. In `int` (not the connection's
    `i64`): the cube of a long epoch's time would not fit 64 bits."""
    cwnd: int = c.cwnd
    c.cubic_ack_cnt += acked
    if not c.cubic_epoch_ns:
        c.cubic_epoch_ns = now_ns
        c.cubic_ack_cnt = acked
        c.cubic_tcp_cwnd = cwnd
        if c.cubic_last_max <= cwnd:
            c.cubic_k_ms = 0
            c.cubic_origin = cwnd
        else:
            c.cubic_k_ms = _icbrt((c.cubic_last_max - cwnd) * _CUBE_DIV)
            c.cubic_origin = c.cubic_last_max
    t_ms: int = (now_ns - c.cubic_epoch_ns + c.min_rtt_ns) // 1_000_000
    d = t_ms - c.cubic_k_ms
    offset = abs(d) ** 3 // _CUBE_DIV
    target = c.cubic_origin + offset if d >= 0 else c.cubic_origin - offset
    cnt = cwnd // (target - cwnd) if target > cwnd else 100 * cwnd
    if c.cubic_last_max == 0 and cnt > 20:
        cnt = 20  # keep probing at a sane pace before the first loss
    delta = cwnd * BETA_SCALE >> 3  # TCP friendliness: where would Reno be?
    if delta:
        while c.cubic_ack_cnt > delta:
            c.cubic_ack_cnt -= delta
            c.cubic_tcp_cwnd += 1
    if c.cubic_tcp_cwnd > cwnd:
        cnt = min(cnt, cwnd // (c.cubic_tcp_cwnd - cwnd))
    return max(cnt, 2)
