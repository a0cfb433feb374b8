"""CUBIC window growth (tcp_cubic.c): beta 0.7, the cubic curve back to W_max, Reno when asked."""

from __future__ import annotations

from kplab.sim import MS, SECOND
from kplab.tcp import TcpConfig
from kplab.tcp.cc import cong_avoid, ssthresh

from .direct import established


def _after_loss(cfg: TcpConfig, w_max: int, rtt: int, seconds: int) -> tuple[object, dict[int, int]]:
    """cwnd sampled each second after a loss at W_max, ACK clocked at one window per RTT."""
    _a, _b, _client, conn = established(cfg)
    conn.cwnd = w_max
    conn.ssthresh = ssthresh(conn)
    conn.cwnd = conn.ssthresh
    conn.min_rtt_ns = rtt
    seen: dict[int, int] = {}
    now = SECOND
    while now <= seconds * SECOND:
        for _ in range(conn.cwnd):
            cong_avoid(conn, 1, True, now)
        now += rtt
        seen.setdefault((now - SECOND) // SECOND, conn.cwnd)
    return conn, seen


def test_cubic_reduces_to_beta_and_returns_to_w_max_at_k() -> None:
    conn, seen = _after_loss(TcpConfig(), 1000, 100 * MS, 13)
    assert conn.ssthresh == 1000 * 717 // 1024  # type: ignore[attr-defined]
    # K = cbrt(W_max (1 - beta) / C) = cbrt(300 / 0.4) ~ 9.1 s: concave up to W_max, then convex
    assert 700 < seen[2] < seen[5] < seen[8] <= 1000
    assert seen[2] - seen[1] > seen[5] - seen[4] > seen[8] - seen[7] >= 0
    assert 990 <= seen[9] <= 1005
    assert seen[12] - seen[11] > seen[10] - seen[9] >= 0


def test_cubic_is_reno_friendly_at_short_rtt() -> None:
    conn, seen = _after_loss(TcpConfig(), 100, 10 * MS, 3)
    # the AIMD estimate (about 0.53 packets per RTT with beta 0.7) outgrows the cubic curve
    assert 45 <= seen[1] - seen[0] <= 60
    assert conn.cubic_tcp_cwnd >= conn.cwnd  # type: ignore[attr-defined]


def test_reno_halves_and_grows_one_packet_per_rtt() -> None:
    conn, seen = _after_loss(TcpConfig(congestion="reno"), 100, 10 * MS, 2)
    assert conn.ssthresh == 50  # type: ignore[attr-defined]
    assert seen[1] - seen[0] in (99, 100, 101)  # one packet per 10 ms RTT


def test_fast_convergence_lowers_w_max_when_below_previous() -> None:
    _a, _b, _client, conn = established()
    conn.cwnd = 100
    ssthresh(conn)
    conn.cwnd = 80
    ssthresh(conn)
    assert conn.cubic_last_max == 80 * (1024 + 717) // 2048
