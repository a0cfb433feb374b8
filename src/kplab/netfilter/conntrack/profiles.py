"""Kernel profiles and the per-netns sysctls: what differs between kernels is data here.

`5.4` is mainline behaviour from 4.19 through 6.0 (the blog's era): any failed window check makes
the packet INVALID. `6.1` is 6.1 and later (commit "netfilter: conntrack: ignore overly delayed tcp
packets"): old data and old ACKs are IGNOREd (still NATed), a small overshoot of the receiver's
window is IGNOREd with `td_end` moved, plus the RST and timeout refinements of 2020-2022.
`host` picks one of the two from `uname -r` (the caller passes the release string: no I/O here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from kplab.errors import InputError
from kplab.untrusted import shown


@dataclass(frozen=True, slots=True)
class Profile:
    """Behaviour switches of one kernel era (each names the kernel change it stands for)."""

    name: str
    # d9a6f0d0df18 + 6e250dcbff1d (v6.1): SEQ-under/ACK-under -> IGNORE, small overshoot -> IGNORE.
    window_ignore: bool
    # A SYN re-initialises its direction in SYN_SENT/SYN_RECV whatever the direction (v5.x+);
    # 5.4: only (SYN_SENT, ORIGINAL) or (SYN_RECV, REPLY).
    reinit_any_direction: bool
    # f2dd495a8d58 (v5.18): tcp_options() keeps BE_LIBERAL when a SYN re-initialises a direction.
    keep_liberal_on_reinit: bool
    # RST on an entry already closing (FIN_WAIT..CLOSE) skips every sequence check.
    rst_skip_checks_when_closing: bool
    # RST validation: td_maxack is not trusted right after a SYN was let through, and SEQ=0 on a
    # not established entry closes it.
    rst_distrust_maxack_after_syn: bool
    # A RST answering a challenge ACK seen in SYN_SENT is accepted without window checks.
    rst_after_challenge_ack_in_syn_sent: bool
    # 628d694344a0 (v6.1): out-of-window FIN/RST answering a FIN/RST lowers the timeout to UNACK.
    lower_timeout_on_invalid_fin_rst: bool
    # A retransmitted SYN in SYN_SENT does not refresh the timeout.
    syn_retransmit_keeps_timeout: bool
    # A picked-up entry (ESTABLISHED without a reply) gets at most the UNACK timeout.
    pickup_timeout_capped: bool
    # nf_conntrack_tcp_ignore_invalid_rst exists (v5.14).
    has_ignore_invalid_rst: bool
    # The `ignore` stat counts untracked packets (removed in the 5.x series).
    counts_ignore_stat: bool
    # UDP: the stream timeout (and ASSURED) only once the flow is 2 s old (v5.15+).
    udp_stream_after_2s: bool
    # Reason texts: "6" (nf_tcp_log_invalid with bounds) or "5" ("nf_ct_tcp: ..." strings).
    reason_style: str
    # "do not force CLOSE on invalid-seq RST without direction check" (2025): a RST skips the
    # window check as the answer to an ignored SYN only if it comes from the SYN's other side.
    # Seen on 6.18.44 in the lab; the exact first release is not pinned down, so only `host`
    # profiles for >= 6.18 turn it on.
    rst_ignored_syn_answer_other_dir: bool = False


PROFILE_5_4 = Profile(
    name="5.4",
    window_ignore=False,
    reinit_any_direction=False,
    keep_liberal_on_reinit=False,
    rst_skip_checks_when_closing=False,
    rst_distrust_maxack_after_syn=False,
    rst_after_challenge_ack_in_syn_sent=False,
    lower_timeout_on_invalid_fin_rst=False,
    syn_retransmit_keeps_timeout=False,
    pickup_timeout_capped=True,
    has_ignore_invalid_rst=False,
    counts_ignore_stat=True,
    udp_stream_after_2s=False,
    reason_style="5",
)

PROFILE_6_1 = Profile(
    name="6.1",
    window_ignore=True,
    reinit_any_direction=True,
    keep_liberal_on_reinit=True,
    rst_skip_checks_when_closing=True,
    rst_distrust_maxack_after_syn=True,
    rst_after_challenge_ack_in_syn_sent=True,
    lower_timeout_on_invalid_fin_rst=True,
    syn_retransmit_keeps_timeout=True,
    pickup_timeout_capped=True,
    has_ignore_invalid_rst=True,
    counts_ignore_stat=False,
    udp_stream_after_2s=True,
    reason_style="6",
)

PROFILES = {"5.4": PROFILE_5_4, "6.1": PROFILE_6_1}
HOST = "host"  # the profile of the running kernel, picked by `profile_for_release`
KERNEL_PROFILES = (*PROFILES, HOST)  # every kernel profile name kplab accepts (scenarios, CLI options)


def profile_for_release(release: str) -> Profile:
    """The profile for a kernel release string such as `6.18.44-fc-v669` (`uname -r`)."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise InputError(f"cannot read a kernel version from {release!r}")
    version = (int(m.group(1)), int(m.group(2)))
    base = PROFILE_6_1 if version >= (6, 1) else PROFILE_5_4
    return replace(base, name=f"host ({release})", rst_ignored_syn_answer_other_dir=version >= (6, 18))


def get_profile(name: str, host_release: str | None = None) -> Profile:
    """`5.4`, `6.1` or `host` (then `host_release`, the caller's `uname -r`, is required)."""
    if name == HOST:
        if host_release is None:
            raise InputError("the host profile needs the kernel release (uname -r)")
        return profile_for_release(host_release)
    try:
        return PROFILES[name]
    except KeyError:
        raise InputError(f"unknown kernel profile {name!r} (one of {', '.join(KERNEL_PROFILES)})") from None


S = 1_000_000_000  # nanoseconds per second


@dataclass(slots=True)
class Sysctls:
    """The per-netns `net.netfilter.nf_conntrack_*` knobs the tracker reads (kernel defaults).

    Timeouts are in seconds as the sysctls spell them; `nf_conntrack_max` is global in the kernel
    (read-only in a child netns) but each netns compares its own count against it.
    """

    nf_conntrack_max: int = 262144
    nf_conntrack_checksum: int = 1
    nf_conntrack_acct: int = 0
    nf_conntrack_tcp_loose: int = 1
    nf_conntrack_tcp_be_liberal: int = 0
    nf_conntrack_tcp_ignore_invalid_rst: int = 0
    nf_conntrack_tcp_max_retrans: int = 3
    nf_conntrack_tcp_timeout_syn_sent: int = 120
    nf_conntrack_tcp_timeout_syn_recv: int = 60
    nf_conntrack_tcp_timeout_established: int = 432000
    nf_conntrack_tcp_timeout_fin_wait: int = 120
    nf_conntrack_tcp_timeout_close_wait: int = 60
    nf_conntrack_tcp_timeout_last_ack: int = 30
    nf_conntrack_tcp_timeout_time_wait: int = 120
    nf_conntrack_tcp_timeout_close: int = 10
    nf_conntrack_tcp_timeout_max_retrans: int = 300
    nf_conntrack_tcp_timeout_unacknowledged: int = 300
    nf_conntrack_udp_timeout: int = 30
    nf_conntrack_udp_timeout_stream: int = 120
    nf_conntrack_icmp_timeout: int = 30
    nf_conntrack_generic_timeout: int = 600

    def set(self, key: str, value: str) -> None:
        """Set `net.netfilter.nf_conntrack_tcp_loose` (or the short `nf_conntrack_tcp_loose`)."""
        short = key.removeprefix("net.netfilter.").replace("/", ".")
        if short not in _SYSCTL_NAMES:
            raise InputError(f"unknown conntrack sysctl {key!r}")
        try:
            number = int(value)
        except ValueError:
            raise InputError(f"sysctl {key} wants an integer, got {value[:40]!r}") from None
        low, high = sysctl_range(short)
        if not low <= number <= high:
            raise InputError(
                f"sysctl {key}: {shown(number)} is outside what the kernel accepts, {low}..{high}"
            )
        setattr(self, short, number)

    def tcp_timeouts_ns(self) -> tuple[int, ...]:
        """Per TcpState (NONE..SYN_SENT2), then RETRANS, then UNACK, in nanoseconds."""
        seconds = (
            self.nf_conntrack_tcp_timeout_syn_sent,  # NONE: the "new" timeout, as the kernel fills it
            self.nf_conntrack_tcp_timeout_syn_sent,
            self.nf_conntrack_tcp_timeout_syn_recv,
            self.nf_conntrack_tcp_timeout_established,
            self.nf_conntrack_tcp_timeout_fin_wait,
            self.nf_conntrack_tcp_timeout_close_wait,
            self.nf_conntrack_tcp_timeout_last_ack,
            self.nf_conntrack_tcp_timeout_time_wait,
            self.nf_conntrack_tcp_timeout_close,
            120,  # SYN_SENT2 has no sysctl: the built-in 2 minutes
            self.nf_conntrack_tcp_timeout_max_retrans,
            self.nf_conntrack_tcp_timeout_unacknowledged,
        )
        return tuple(s * S for s in seconds)


_SYSCTL_NAMES = frozenset(f.name for f in fields(Sysctls))

# What each sysctl's handler accepts (net/netfilter/nf_conntrack_standalone.c, checked by writing
# them in a namespace on 6.18): the switches are u8 0..1, max_retrans a u8 0..255, nf_conntrack_max
# an int 0..INT_MAX (0: no limit). Timeouts are proc_dointvec_jiffies, which refuses seconds above
# INT_MAX/HZ: 2147483 with HZ=1000 is what every kernel accepts. It takes negative seconds too,
# which mean nothing; kplab refuses them.
_SWITCHES = frozenset({"nf_conntrack_checksum", "nf_conntrack_acct", "nf_conntrack_tcp_loose",
                       "nf_conntrack_tcp_be_liberal", "nf_conntrack_tcp_ignore_invalid_rst"})  # fmt: skip
INT_MAX = 2**31 - 1
TIMEOUT_MAX_S = INT_MAX // 1000


def sysctl_range(short: str) -> tuple[int, int]:
    """(min, max) the kernel accepts for `nf_conntrack_...` (the name without `net.netfilter.`)."""
    if short in _SWITCHES:
        return 0, 1
    if short == "nf_conntrack_tcp_max_retrans":
        return 0, 255
    if short == "nf_conntrack_max":
        return 0, INT_MAX
    return 0, TIMEOUT_MAX_S


TIMEOUT_RETRANS = 10  # index into tcp_timeouts_ns()
TIMEOUT_UNACK = 11
