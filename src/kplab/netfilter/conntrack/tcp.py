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
    Entry,
    without,
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
from kplab.netfilter.conntrack.tcp_window import (
    M,
    has_options,
    option_flags,
    option_wscale,
    tcp_in_window,
    tcp_options,
)
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


def tcp_new(ct: Entry, pkt: Packet, sysctls: Sysctls) -> bool:
    """`tcp_new`: set up a new entry's TCP state from the connection's first packet.

    False: INVALID, no entry. A SYN starts SYN_SENT tracking; any ACK-index packet with
    `nf_conntrack_tcp_loose=1` is a mid-stream pickup, trusted as it is, with BE_LIBERAL on both
    sides.
    """
    index = segment_index(pkt.flags)
    new_state = TRANSITIONS[0][index][TcpState.NONE]
    if new_state == IV:
        return False
    end = (pkt.seq + pkt.seg_len) & M
    ct.td_end0 = end
    ct.td_maxwin0 = pkt.win or 1
    if new_state == TcpState.SYN_SENT:
        ct.td_maxend0 = end
        tcp_options(pkt, ct, 0, keep_liberal=False)
    elif not sysctls.nf_conntrack_tcp_loose:
        return False
    else:
        ct.td_maxend0 = (end + ct.td_maxwin0) & M
        ct.td_flags0 = ct.td_flags1 = SACK_PERM | BE_LIBERAL
    return True


def tcp_packet(
    entry: Entry,
    direction: int,
    pkt: Packet,
    profile: Profile,
    sysctls: Sysctls,
    timeouts: tuple[int, ...],
    now_ns: int,
) -> tuple[int, str | None]:
    """`nf_conntrack_tcp_packet`: the state machine, its special cases, the window check, timeouts."""
    old_state = entry.state
    index = segment_index(pkt.flags)
    new_state = TRANSITIONS[direction][index][old_state]

    if new_state == TcpState.SYN_SENT and old_state >= TcpState.TIME_WAIT:
        sides = entry.td_flags0 | entry.td_flags1
        if sides & CLOSE_INIT or (entry.last_dir == direction and entry.last_index == Index.RST):
            return REPEAT, None
        new_state = IG
    if new_state == IG:
        if not _answers_ignored_syn(entry, direction, index, pkt):
            return _ignored(entry, direction, index, old_state, pkt, profile)
        resync_from_ignored_syn(entry, direction, profile.keep_liberal_on_reinit)
        old_state, new_state = TcpState.SYN_SENT, TcpState.SYN_RECV
    if new_state == IV:
        if profile.reason_style == "5":
            return INVALID, "invalid state"
        return INVALID, f"packet (index {index}) in dir {direction} invalid, state {TcpState(old_state).name}"
    if new_state == TcpState.TIME_WAIT and _challenge_ack(entry, direction, index, old_state):
        entry.last_flags = without(entry.last_flags, EXP_CHALLENGE_ACK)
        return IGNORE, "challenge-ack ignored"
    if new_state == TcpState.SYN_SENT2:
        entry.last_flags |= SIMULTANEOUS_OPEN
    elif (
        new_state == TcpState.SYN_RECV
        and direction == 1
        and index == Index.ACK
        and entry.last_flags & SIMULTANEOUS_OPEN
    ):
        new_state = TcpState.ESTABLISHED
    skip_window = False
    if new_state == TcpState.CLOSE and index == Index.RST:
        new_state, skip_window, reason = _rst_checks(entry, direction, pkt, old_state, profile, sysctls)
        if reason is not None:
            return INVALID, reason
    if not skip_window:
        liberal = bool(sysctls.nf_conntrack_tcp_be_liberal)
        action, reason = tcp_in_window(entry, direction, index, pkt, profile, liberal)
        if action == IGNORE:
            return IGNORE, reason
        if action == INVALID:
            if profile.lower_timeout_on_invalid_fin_rst:
                _lower_timeout(entry, direction, index, timeouts, now_ns)
            return INVALID, reason
    return _commit(entry, direction, index, pkt, old_state, new_state, profile, sysctls, timeouts, now_ns)


def _ignored(
    entry: Entry, direction: int, index: int, old_state: int, pkt: Packet, profile: Profile
) -> tuple[int, str | None]:
    """The sIG branch: note the packet (to resynchronise later), let it pass with its entry."""
    entry.last_index = index
    entry.last_dir = direction
    entry.last_seq = pkt.seq & M
    entry.last_end = (pkt.seq + pkt.seg_len) & M
    entry.last_win = pkt.win
    if index == Index.SYN and direction == 0:
        # the SYN's options, as `tcp_options` would set them on a fresh side
        entry.last_flags = option_flags(pkt) if has_options(pkt) else 0
        entry.last_wscale = option_wscale(pkt) if has_options(pkt) else 0
        if old_state == TcpState.LAST_ACK:
            entry.last_flags |= EXP_CHALLENGE_ACK
    challenge = old_state == TcpState.SYN_SENT and index == Index.ACK and direction == 1
    if challenge and profile.rst_after_challenge_ack_in_syn_sent:
        entry.last_ack = pkt.ack & M  # a possible challenge ACK to the SYN
    state = TcpState(old_state).name
    if profile.reason_style == "5":
        return IGNORE, f"invalid packet ignored in state {state} "
    return IGNORE, f"packet (index {index}) in dir {direction} ignored, state {state}"


def _answers_ignored_syn(entry: Entry, direction: int, index: int, pkt: Packet) -> bool:
    """A SYN/ACK acknowledging a SYN we ignored: both ends are in sync, conntrack is not."""
    return (
        index == Index.SYNACK
        and entry.last_index == Index.SYN
        and entry.last_dir != direction
        and pkt.ack & M == entry.last_end
    )


def resync_from_ignored_syn(entry: Entry, direction: int, keep_liberal: bool) -> None:
    """Re-initialise the side whose SYN was ignored from the values noted then; forget the other
    (5.4 forgets everything, later kernels keep its BE_LIBERAL)."""
    d = entry.last_dir
    entry.set_td_end(d, entry.last_end)
    entry.set_td_maxend(d, entry.last_end)
    entry.set_td_maxwin(d, entry.last_win or 1)
    entry.set_td_scale(d, entry.last_wscale)
    entry.last_flags = without(entry.last_flags, EXP_CHALLENGE_ACK)
    entry.set_td_flags(d, entry.last_flags)
    entry.reset_side(direction)
    if not keep_liberal:
        entry.set_td_flags(direction, 0)


def _challenge_ack(entry: Entry, direction: int, index: int, old_state: int) -> bool:
    """An ACK in LAST_ACK answering an ignored SYN is a challenge ACK, not the last ACK."""
    return (
        old_state == TcpState.LAST_ACK
        and index == Index.ACK
        and entry.last_dir != direction
        and entry.last_index == Index.SYN
        and bool(entry.last_flags & EXP_CHALLENGE_ACK)
    )


def _established(entry: Entry) -> bool:
    """`nf_conntrack_tcp_established`: ESTABLISHED and ASSURED."""
    return entry.state == TcpState.ESTABLISHED and bool(entry.status & IPS_ASSURED)


def _rst_checks(
    entry: Entry,
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
    other = entry.side(1 - direction)
    seq = pkt.seq & M
    trust_maxack = not profile.rst_distrust_maxack_after_syn or entry.last_index != Index.SYN
    if other.flags & MAXACK_SET and trust_maxack:
        established = _established(entry)
        if profile.rst_distrust_maxack_after_syn and seq == 0 and not established:
            return new_state, False, None
        if ((seq - other.td_maxack) & M) >= 0x80000000 and not (
            profile.has_ignore_invalid_rst and sysctls.nf_conntrack_tcp_ignore_invalid_rst
        ):
            return new_state, False, "invalid rst"
        if not established or seq == other.td_maxack:
            return new_state, False, None
        if entry.last_index == Index.ACK and entry.last_dir == direction and seq == entry.last_end:
            return new_state, False, None  # the RST ends a train of this side's segments
        new_state = old_state  # inexact RST: keep the state for a possible challenge ACK
    ack = pkt.ack & M
    other_dir_ok = not profile.rst_ignored_syn_answer_other_dir or entry.last_dir != direction
    answers_ignored = (
        (entry.status & IPS_SEEN_REPLY and entry.last_index == Index.SYN and other_dir_ok)
        or (not entry.status & IPS_ASSURED and entry.last_index == Index.ACK)
    ) and ack == entry.last_end
    if answers_ignored:
        return new_state, True, None
    if (
        profile.rst_after_challenge_ack_in_syn_sent
        and old_state == TcpState.SYN_SENT
        and entry.last_index == Index.ACK
        and entry.last_dir == 1
        and seq == entry.last_ack
    ):
        return new_state, True, None
    return new_state, False, None


def _lower_timeout(entry: Entry, direction: int, index: int, timeouts: tuple[int, ...], now_ns: int) -> None:
    """`nf_tcp_handle_invalid`: an out-of-window FIN/RST answering one shortens an ASSURED entry."""
    if not entry.status & IPS_ASSURED or index not in (Index.FIN, Index.RST):
        return
    if entry.last_dir != direction and entry.last_index in (Index.FIN, Index.RST):
        left = entry.timeout_ns - now_ns
        unack = timeouts[TIMEOUT_UNACK]
        if left >= 120 * 1_000_000_000 and left > unack:
            entry.timeout_ns = now_ns + unack
    else:
        entry.last_index = index
        entry.last_dir = direction


def _commit(
    entry: Entry,
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
    entry.last_index = index
    entry.last_dir = direction
    entry.state = new_state
    if old_state != new_state and new_state == TcpState.FIN_WAIT:
        entry.add_td_flags(direction, CLOSE_INIT)
    timeout = _choose_timeout(entry, index, new_state, timeouts, sysctls)
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


def _choose_timeout(entry: Entry, index: int, state: int, timeouts: tuple[int, ...], sysctls: Sysctls) -> int:
    """The timeout rules, first match wins: RETRANS, CLOSE for a RST, UNACK, zero window, the state's."""
    if entry.retrans >= sysctls.nf_conntrack_tcp_max_retrans and timeouts[state] > timeouts[TIMEOUT_RETRANS]:
        return timeouts[TIMEOUT_RETRANS]
    if index == Index.RST:
        return timeouts[TcpState.CLOSE]
    unacked = (entry.td_flags0 | entry.td_flags1) & DATA_UNACKNOWLEDGED
    if unacked and timeouts[state] > timeouts[TIMEOUT_UNACK]:
        return timeouts[TIMEOUT_UNACK]
    if entry.last_win == 0 and timeouts[state] > timeouts[TIMEOUT_RETRANS]:
        return timeouts[TIMEOUT_RETRANS]
    return timeouts[state]
