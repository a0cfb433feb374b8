"""Congestion control: NewReno window growth (`tcp_reno_cong_avoid`), in packets like Linux."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kplab.tcp.conn import Connection


def reno_ssthresh(conn: Connection) -> int:
    """`tcp_reno_ssthresh`: half the congestion window, at least 2."""
    return max(conn.cwnd >> 1, 2)


def reno_cong_avoid(conn: Connection, acked: int, cwnd_limited: bool) -> None:
    """`tcp_reno_cong_avoid`: slow start below ssthresh, then one packet per window of ACKs."""
    if not cwnd_limited:
        return
    if conn.cwnd < conn.ssthresh:
        grown = min(conn.cwnd + acked, conn.ssthresh)
        acked -= grown - conn.cwnd
        conn.cwnd = grown
        if not acked:
            return
    conn.cwnd_cnt += acked
    if conn.cwnd_cnt >= conn.cwnd:
        conn.cwnd += conn.cwnd_cnt // conn.cwnd
        conn.cwnd_cnt %= conn.cwnd
    conn.cwnd = min(conn.cwnd, conn.cfg.max_cwnd)
