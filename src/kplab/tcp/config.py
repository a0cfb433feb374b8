"""Per-host TCP settings, Linux defaults (sysctl names in comments)."""

from __future__ import annotations

from dataclasses import dataclass

from kplab.sim.scheduler import MS, SECOND


@dataclass(slots=True, frozen=True)
class TcpConfig:
    mss: int = 1460  # advertised MSS (interface MTU 1500)
    rcvbuf_bytes: int = 262144  # receive buffer (no autotuning); the advertised window is its free space
    wscale: int = 7  # our window scale shift: see window_scale_for() (7 up to 6.x, 10 on 6.18)
    window_scaling: bool = True  # net.ipv4.tcp_window_scaling
    sack: bool = True  # net.ipv4.tcp_sack
    initial_cwnd: int = 10  # TCP_INIT_CWND
    congestion: str = "cubic"  # net.ipv4.tcp_congestion_control: "cubic" or "reno"
    cubic_fast_convergence: bool = True  # tcp_cubic fast_convergence
    rto_min_ns: int = 200 * MS  # TCP_RTO_MIN
    rto_initial_ns: int = 1 * SECOND  # TCP_TIMEOUT_INIT
    rto_max_ns: int = 120 * SECOND  # TCP_RTO_MAX
    delack_ns: int = 40 * MS  # TCP_DELACK_MIN
    quickacks: int = 16  # TCP_MAX_QUICKACKS
    # Linux's ACK policy in full (checked against 6.18): quick ACKs from the first data, an ACK
    # for every segment that grows the window (tcp_grow_window), and ACK-every-2-segments only
    # while the window is not shrinking. Off by default: quick ACKs from the handshake, then
    # every second segment.
    linux_ack_policy: bool = False
    retries2: int = 15  # net.ipv4.tcp_retries2
    syn_retries: int = 6  # net.ipv4.tcp_syn_retries
    synack_retries: int = 5  # net.ipv4.tcp_synack_retries
    timewait_ns: int = 60 * SECOND  # TCP_TIMEWAIT_LEN
    fin_timeout_ns: int = 60 * SECOND  # net.ipv4.tcp_fin_timeout (orphaned FIN_WAIT2)
    invalid_ratelimit_ns: int = 500 * MS  # net.ipv4.tcp_invalid_ratelimit
    challenge_ack_limit: int = 2**31 - 1  # net.ipv4.tcp_challenge_ack_limit (1000 before v6.0)
    challenge_ack_unsent_data: bool = True  # RFC 5961 5.2 for SEG.ACK > SND.NXT (recent kernels, 6.18)
    port_low: int = 32768  # net.ipv4.ip_local_port_range
    port_high: int = 60999
    backlog: int = 4096  # net.core.somaxconn
    max_cwnd: int = 100_000


def window_scale_for(tcp_rmem_max: int, rmem_max: int) -> int:
    """The shift Linux offers in its SYN (`tcp_select_initial_window`): ilog2 of the largest
    receive buffer minus 15, at most 14. tcp_rmem[2] = 6 MiB gives 7; 32 MiB (6.18) gives 10."""
    space = max(tcp_rmem_max, rmem_max)
    return max(0, min(14, space.bit_length() - 1 - 15))
