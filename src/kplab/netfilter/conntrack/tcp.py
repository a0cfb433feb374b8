"""The TCP tracker: `tcp_new` for a connection's first packet and `tcp_packet` for every packet.

`tcp_packet` returns one of the verdicts below and sets the entry's expiry; the table
(`table.py`) turns them into ctinfo, counters and NAT. See `tcp_table` for the state machine and
`tcp_window` for the window check.
"""

from __future__ import annotations

from typing import Final

from kplab.netfilter.conntrack.entry import (
    BE_LIBERAL,
    CLOSE_INIT,
    DATA_UNACKNOWLEDGED,
    EXP_CHALLENGE_ACK,
    IPS_ASSURED,
    IPS_SEEN_REPLY,
    MAXACK_SET,
    SACK_PERM,
    SIMULTANEOUS_OPEN,
    WINDOW_SCALE,
    Entry,
    TcpInfo,
    TcpSide,
)
from kplab.netfilter.conntrack.profiles import TIMEOUT_RETRANS, TIMEOUT_UNACK, Profile, Sysctls
from kplab.netfilter.conntrack.tcp_table import (
    CWR,
    ECE,
    IG,
    IV,
    PSH,
    TRANSITIONS,
    VALID_FLAGS,
    Index,
    TcpState,
    segment_index,
)
from kplab.netfilter.conntrack.tcp_verdict import ACCEPT, IGNORE, INVALID, KILLED, REPEAT, UNREFRESHED
from kplab.netfilter.conntrack.tcp_window import M, tcp_in_window, tcp_options
from kplab.packet import Packet

_CLOSING: Final = (
    TcpState.FIN_WAIT,
    TcpState.CLOSE_WAIT,
    TcpState.LAST_ACK,
    TcpState.TIME_WAIT,
    TcpState.CLOSE,
)


def tcp_error(pkt: Packet) -> str | None:
    """`tcp_error`: the flag sanity check (PSH, ECE, CWR are ignored). Returns the reason or None."""
    if pkt.flags & ~(PSH | ECE | CWR) not in VALID_FLAGS:
        return "invalid tcp flag combination"
    return None


def tcp_new(pkt: Packet, sysctls: Sysctls) -> TcpInfo | None:
    """`tcp_new`: state for a connection's first packet, or None (INVALID, no entry).

    A SYN starts SYN_SENT tracking; any ACK-index packet with `nf_conntrack_tcp_loose=1` is a
    mid-stream pickup, trusted as it is, with BE_LIBERAL on both sides.
    """
    index = segment_index(pkt.flags)
    new_state = TRANSITIONS[0][index][TcpState.NONE]
    if new_state == IV:
        return None
    end = (pkt.seq + pkt.seg_len) & M
    ti = TcpInfo(orig=TcpSide(), reply=TcpSide())
    ti.orig.td_end = end
    ti.orig.td_maxwin = pkt.win or 1
    if new_state == TcpState.SYN_SENT:
        ti.orig.td_maxend = end
        tcp_options(pkt, ti.orig, keep_liberal=False)
    elif not sysctls.nf_conntrack_tcp_loose:
        return None
    else:
        ti.orig.td_maxend = (end + ti.orig.td_maxwin) & M
        ti.orig.flags = ti.reply.flags = SACK_PERM | BE_LIBERAL
    return ti


def tcp_packet(
    entry: Entry,
    ti: TcpInfo,
    direction: int,
    pkt: Packet,
    profile: Profile,
    sysctls: Sysctls,
    timeouts: tuple[int, ...],
    now_ns: int,
) -> tuple[int, str | None]:
    """`nf_conntrack_tcp_packet`: the state machine, its special cases, the window check, timeouts."""
    old_state = ti.state
    index = segment_index(pkt.flags)
    new_state = TRANSITIONS[direction][index][old_state]

    if new_state == TcpState.SYN_SENT and old_state >= TcpState.TIME_WAIT:
        sides = ti.orig.flags | ti.reply.flags
        if sides & CLOSE_INIT or (ti.last_dir == direction and ti.last_index == Index.RST):
            return REPEAT, None
        new_state = IG
    if new_state == IG:
        if not _answers_ignored_syn(ti, direction, index, pkt):
            return _ignored(ti, direction, index, old_state, pkt, profile)
        resync_from_ignored_syn(ti, direction, profile.keep_liberal_on_reinit)
        old_state, new_state = TcpState.SYN_SENT, TcpState.SYN_RECV
    if new_state == IV:
        if profile.reason_style == "5":
            return INVALID, "invalid state"
        return INVALID, f"packet (index {index}) in dir {direction} invalid, state {TcpState(old_state).name}"
    if new_state == TcpState.TIME_WAIT and _challenge_ack(ti, direction, index, old_state):
        ti.last_flags &= ~EXP_CHALLENGE_ACK
        return IGNORE, "challenge-ack ignored"
    if new_state == TcpState.SYN_SENT2:
        ti.last_flags |= SIMULTANEOUS_OPEN
    elif (
        new_state == TcpState.SYN_RECV
        and direction == 1
        and index == Index.ACK
        and ti.last_flags & SIMULTANEOUS_OPEN
    ):
        new_state = TcpState.ESTABLISHED
    skip_window = False
    if new_state == TcpState.CLOSE and index == Index.RST:
        new_state, skip_window, reason = _rst_checks(entry, ti, direction, pkt, old_state, profile, sysctls)
        if reason is not None:
            return INVALID, reason
    if not skip_window:
        liberal = bool(sysctls.nf_conntrack_tcp_be_liberal)
        action, reason = tcp_in_window(ti, direction, index, pkt, profile, liberal)
        if action == IGNORE:
            return IGNORE, reason
        if action == INVALID:
            if profile.lower_timeout_on_invalid_fin_rst:
                _lower_timeout(entry, ti, direction, index, timeouts, now_ns)
            return INVALID, reason
    return _commit(entry, ti, direction, index, pkt, old_state, new_state, profile, sysctls, timeouts, now_ns)


def _ignored(
    ti: TcpInfo, direction: int, index: int, old_state: int, pkt: Packet, profile: Profile
) -> tuple[int, str | None]:
    """The sIG branch: note the packet (to resynchronise later), let it pass with its entry."""
    ti.last_index = index
    ti.last_dir = direction
    ti.last_seq = pkt.seq & M
    ti.last_end = (pkt.seq + pkt.seg_len) & M
    ti.last_win = pkt.win
    if index == Index.SYN and direction == 0:
        seen = TcpSide()
        tcp_options(pkt, seen, keep_liberal=False)
        ti.last_flags = ti.last_wscale = 0
        if seen.flags & WINDOW_SCALE:
            ti.last_flags |= WINDOW_SCALE
            ti.last_wscale = seen.td_scale
        if seen.flags & SACK_PERM:
            ti.last_flags |= SACK_PERM
        if old_state == TcpState.LAST_ACK:
            ti.last_flags |= EXP_CHALLENGE_ACK
    challenge = old_state == TcpState.SYN_SENT and index == Index.ACK and direction == 1
    if challenge and profile.rst_after_challenge_ack_in_syn_sent:
        ti.last_ack = pkt.ack & M  # a possible challenge ACK to the SYN
    state = TcpState(old_state).name
    if profile.reason_style == "5":
        return IGNORE, f"invalid packet ignored in state {state} "
    return IGNORE, f"packet (index {index}) in dir {direction} ignored, state {state}"


def _answers_ignored_syn(ti: TcpInfo, direction: int, index: int, pkt: Packet) -> bool:
    """A SYN/ACK acknowledging a SYN we ignored: both ends are in sync, conntrack is not."""
    return (
        index == Index.SYNACK
        and ti.last_index == Index.SYN
        and ti.last_dir != direction
        and pkt.ack & M == ti.last_end
    )


def resync_from_ignored_syn(ti: TcpInfo, direction: int, keep_liberal: bool) -> None:
    """Re-initialise the side whose SYN was ignored from the values noted then; forget the other
    (5.4 forgets everything, later kernels keep its BE_LIBERAL)."""
    side = ti.side(ti.last_dir)
    side.td_end = side.td_maxend = ti.last_end
    side.td_maxwin = ti.last_win or 1
    side.td_scale = ti.last_wscale
    ti.last_flags &= ~EXP_CHALLENGE_ACK
    side.flags = ti.last_flags
    other = ti.side(direction)
    other.reset()
    if not keep_liberal:
        other.flags = 0


def _challenge_ack(ti: TcpInfo, direction: int, index: int, old_state: int) -> bool:
    """An ACK in LAST_ACK answering an ignored SYN is a challenge ACK, not the last ACK."""
    return (
        old_state == TcpState.LAST_ACK
        and index == Index.ACK
        and ti.last_dir != direction
        and ti.last_index == Index.SYN
        and bool(ti.last_flags & EXP_CHALLENGE_ACK)
    )


def _established(entry: Entry, ti: TcpInfo) -> bool:
    """`nf_conntrack_tcp_established`: ESTABLISHED and ASSURED."""
    return ti.state == TcpState.ESTABLISHED and bool(entry.status & IPS_ASSURED)


def _rst_checks(
    entry: Entry,
    ti: TcpInfo,
    direction: int,
    pkt: Packet,
    old_state: int,
    profile: Profile,
    sysctls: Sysctls,
) -> tuple[int, bool, str | None]:
    """RST validation (the CLOSE branch): (new state, skip the window check, INVALID reason)."""
    if profile.rst_skip_checks_when_closing and old_state in _CLOSING:
        return TcpState.CLOSE, True, None
    new_state: int = TcpState.CLOSE
    other = ti.side(1 - direction)
    seq = pkt.seq & M
    trust_maxack = not profile.rst_distrust_maxack_after_syn or ti.last_index != Index.SYN
    if other.flags & MAXACK_SET and trust_maxack:
        established = _established(entry, ti)
        if profile.rst_distrust_maxack_after_syn and seq == 0 and not established:
            return new_state, False, None
        if ((seq - other.td_maxack) & M) >= 0x80000000 and not (
            profile.has_ignore_invalid_rst and sysctls.nf_conntrack_tcp_ignore_invalid_rst
        ):
            return new_state, False, "invalid rst"
        if not established or seq == other.td_maxack:
            return new_state, False, None
        if ti.last_index == Index.ACK and ti.last_dir == direction and seq == ti.last_end:
            return new_state, False, None  # the RST ends a train of this side's segments
        new_state = old_state  # inexact RST: keep the state for a possible challenge ACK
    ack = pkt.ack & M
    other_dir_ok = not profile.rst_ignored_syn_answer_other_dir or ti.last_dir != direction
    answers_ignored = (
        (entry.status & IPS_SEEN_REPLY and ti.last_index == Index.SYN and other_dir_ok)
        or (not entry.status & IPS_ASSURED and ti.last_index == Index.ACK)
    ) and ack == ti.last_end
    if answers_ignored:
        return new_state, True, None
    if (
        profile.rst_after_challenge_ack_in_syn_sent
        and old_state == TcpState.SYN_SENT
        and ti.last_index == Index.ACK
        and ti.last_dir == 1
        and seq == ti.last_ack
    ):
        return new_state, True, None
    return new_state, False, None


def _lower_timeout(
    entry: Entry, ti: TcpInfo, direction: int, index: int, timeouts: tuple[int, ...], now_ns: int
) -> None:
    """`nf_tcp_handle_invalid`: an out-of-window FIN/RST answering one shortens an ASSURED entry."""
    if not entry.status & IPS_ASSURED or index not in (Index.FIN, Index.RST):
        return
    if ti.last_dir != direction and ti.last_index in (Index.FIN, Index.RST):
        left = entry.timeout_ns - now_ns
        unack = timeouts[TIMEOUT_UNACK]
        if left >= 120 * 1_000_000_000 and left > unack:
            entry.timeout_ns = now_ns + unack
    else:
        ti.last_index = index
        ti.last_dir = direction


def _commit(
    entry: Entry,
    ti: TcpInfo,
    direction: int,
    index: int,
    pkt: Packet,
    old_state: int,
    new_state: int,
    profile: Profile,
    sysctls: Sysctls,
    timeouts: tuple[int, ...],
    now_ns: int,
) -> tuple[int, str | None]:
    """An in-window packet: commit the state, pick the timeout, set ASSURED."""
    ti.last_index = index
    ti.last_dir = direction
    ti.state = new_state
    if old_state != new_state and new_state == TcpState.FIN_WAIT:
        ti.side(direction).flags |= CLOSE_INIT
    timeout = _choose_timeout(ti, index, new_state, timeouts, sysctls)
    if not entry.status & IPS_SEEN_REPLY:
        if pkt.flags & 0x04:
            return KILLED, None
        if profile.syn_retransmit_keeps_timeout and index == Index.SYN and old_state == TcpState.SYN_SENT:
            return UNREFRESHED, None
        if (
            profile.pickup_timeout_capped
            and new_state == TcpState.ESTABLISHED
            and timeout > timeouts[TIMEOUT_UNACK]
        ):
            timeout = timeouts[TIMEOUT_UNACK]
    elif (
        not entry.status & IPS_ASSURED
        and old_state in (TcpState.SYN_RECV, TcpState.ESTABLISHED)
        and new_state == TcpState.ESTABLISHED
    ):
        entry.status |= IPS_ASSURED
    entry.timeout_ns = now_ns + timeout
    return ACCEPT, None


def _choose_timeout(ti: TcpInfo, index: int, state: int, timeouts: tuple[int, ...], sysctls: Sysctls) -> int:
    """The timeout rules, first match wins: RETRANS, CLOSE for a RST, UNACK, zero window, the state's."""
    if ti.retrans >= sysctls.nf_conntrack_tcp_max_retrans and timeouts[state] > timeouts[TIMEOUT_RETRANS]:
        return timeouts[TIMEOUT_RETRANS]
    if index == Index.RST:
        return timeouts[TcpState.CLOSE]
    unacked = (ti.orig.flags | ti.reply.flags) & DATA_UNACKNOWLEDGED
    if unacked and timeouts[state] > timeouts[TIMEOUT_UNACK]:
        return timeouts[TIMEOUT_UNACK]
    if ti.last_win == 0 and timeouts[state] > timeouts[TIMEOUT_RETRANS]:
        return timeouts[TIMEOUT_RETRANS]
    return timeouts[state]
