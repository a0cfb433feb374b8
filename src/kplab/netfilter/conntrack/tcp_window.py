"""`tcp_in_window`: the four sequence/ACK bounds, window scaling, SACK and the td_* updates.

Per direction conntrack keeps (`seen[d]`, the entry's `td_*` fields): `td_end` (highest seq+len
sent), `td_maxend` (the right edge the peer advertised: the furthest this side may send),
`td_maxwin` (largest window this side advertised, plus SACK slack and overshoots) and
`td_maxack` (highest ACK sent). A segment from `sender` to `receiver` must satisfy, modulo 2**32:

    I    seq  <= sender.td_maxend                        (not beyond the receiver's window)
    II   end  >= sender.td_end - receiver.td_maxwin      (not older than one window)
    III  sack <= receiver.td_end                         (acks nothing the receiver never sent)
    IV   sack >= receiver.td_end - MAXACKWINDOW(sender)  (not an overly delayed ack)

Up to 6.0 any failure is INVALID. From 6.1 II and IV are IGNORE, and a segment failing only I by
less than the receiver's window is IGNOREd after moving `td_end`. `be_liberal` (sysctl, or the
sender's BE_LIBERAL flag) turns every failure into ACCEPT without updating the td_* fields.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

from kplab.netfilter.conntrack.entry import (
    BE_LIBERAL,
    DATA_UNACKNOWLEDGED,
    MAXACK_SET,
    SACK_PERM,
    WINDOW_SCALE,
    Entry,
)
from kplab.netfilter.conntrack.profiles import Profile
from kplab.netfilter.conntrack.tcp_table import ACK, FIN, RST, SYN, Index, TcpState
from kplab.netfilter.conntrack.tcp_verdict import ACCEPT, IGNORE, INVALID
from kplab.packet import Packet

M: Final = 0xFFFFFFFF
HALF: Final = 0x80000000
MAXACKWINCONST: Final = 66000
MAX_WSCALE: Final = 14


def has_options(pkt: Packet) -> bool:
    return pkt.mss is not None or pkt.wscale is not None or pkt.sackok or bool(pkt.sack)


def option_flags(pkt: Packet) -> int:
    """The WINDOW_SCALE and SACK_PERM flags a SYN's options set."""
    return (WINDOW_SCALE if pkt.wscale is not None else 0) | (SACK_PERM if pkt.sackok else 0)


def option_wscale(pkt: Packet) -> int:
    """The window scale a SYN announces, capped at 14 (0: none)."""
    return min(pkt.wscale, MAX_WSCALE) if pkt.wscale is not None else 0


def tcp_options(pkt: Packet, ct: Entry, d: int, keep_liberal: bool) -> None:
    """`tcp_options`: seen[d]'s window scale (capped at 14) and SACK-permitted from a SYN's options.

    Runs only when the header carries options at all (the kernel returns early otherwise).
    """
    if not has_options(pkt):
        return
    ct.set_td_scale(d, option_wscale(pkt))
    kept = ct.td_flags(d) & BE_LIBERAL if keep_liberal else 0
    ct.set_td_flags(d, kept | option_flags(pkt))


def init_sender(ct: Entry, s: int, pkt: Packet, end: i64, profile: Profile) -> None:
    """`tcp_init_sender`: a SYN/ACK, or a SYN from the reply side, (re)starts direction `s`."""
    r = 1 - s
    ct.set_td_end(s, end)
    ct.set_td_maxend(s, end)
    ct.set_td_maxwin(s, pkt.win or 1)
    tcp_options(pkt, ct, s, profile.keep_liberal_on_reinit)
    both_scale = ct.td_flags(s) & WINDOW_SCALE and ct.td_flags(r) & WINDOW_SCALE
    if not both_scale and (s == 1 or not profile.reinit_any_direction):
        ct.set_td_scale(s, 0)
        ct.set_td_scale(r, 0)


def _highest_sack(pkt: Packet, sack: i64) -> i64:
    """`tcp_sack`: the highest right edge among the SACK blocks, if after the ACK."""
    for _left, right in pkt.sack:
        if ((sack - right) & M) >= HALF:
            sack = right & M
    return sack


def _may_reinit(ct: Entry, direction: int, flags: int, profile: Profile) -> bool:
    if profile.reinit_any_direction:
        return bool(flags & SYN) and ct.state in (TcpState.SYN_SENT, TcpState.SYN_RECV)
    return (ct.state == TcpState.SYN_SENT and direction == 0) or (
        ct.state == TcpState.SYN_RECV and direction == 1
    )


def _start_sender(ct: Entry, s: int, pkt: Packet, end: i64, sack: i64) -> None:
    """First segment seen from this side of a picked-up connection: trust its numbers."""
    r = 1 - s
    ct.set_td_end(s, end)
    swin = (pkt.win << ct.td_scale(s)) & M
    ct.set_td_maxwin(s, swin or 1)
    ct.set_td_maxend(s, (end + ct.td_maxwin(s)) & M)
    if ct.td_maxwin(r) == 0:
        ct.set_td_end(r, sack)
        ct.set_td_maxend(r, sack)
    elif sack == (ct.td_end(r) + 1) & M:
        ct.set_td_end(r, sack)


def tcp_in_window(
    ct: Entry, direction: int, index: int, pkt: Packet, profile: Profile, be_liberal: bool
) -> tuple[int, str | None]:
    """`tcp_in_window`: ACCEPT / IGNORE / INVALID and the kernel's reason text.

    `s` is the sender's direction (`seen[s]`), `r` the receiver's.
    """
    s = direction
    r = 1 - s
    flags = pkt.flags
    seq: i64 = pkt.seq & M
    ack: i64 = pkt.ack & M
    sack = ack
    end: i64 = (seq + pkt.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & M
    if ct.td_flags(r) & SACK_PERM and pkt.sack:
        sack = _highest_sack(pkt, sack)

    if ct.td_maxwin(s) == 0:
        if flags & SYN:
            init_sender(ct, s, pkt, end, profile)
            if not flags & ACK:
                return ACCEPT, None  # simultaneous open
        else:
            _start_sender(ct, s, pkt, end, sack)
    elif (
        ((end - ct.td_end(s)) & M)
        and ((ct.td_end(s) - end) & M) >= HALF
        and _may_reinit(ct, direction, flags, profile)
    ):
        if profile.reinit_any_direction:
            init_sender(ct, s, pkt, end, profile)
            if direction == 1 and not flags & ACK:
                return ACCEPT, None
        else:
            ct.set_td_end(s, end)
            ct.set_td_maxend(s, end)
            ct.set_td_maxwin(s, pkt.win or 1)
            tcp_options(pkt, ct, s, False)

    if not flags & ACK or (flags & RST and ack == 0):
        ack = sack = ct.td_end(r)
    if flags & RST and seq == 0 and ct.state == TcpState.SYN_SENT:
        seq = end = ct.td_end(s)

    liberal = be_liberal or bool(ct.td_flags(s) & BE_LIBERAL)
    if profile.window_ignore:
        verdict = _check_6(ct, s, seq, end, sack, liberal)
    else:
        verdict = _check_5(ct, s, seq, end, sack, liberal)
    if verdict is not None:
        return verdict
    _update(ct, s, index, pkt, seq, ack, sack, end)
    return ACCEPT, None


def maxackwindow(ct: Entry, s: int) -> i64:
    """MAXACKWINDOW(sender): the sender's largest window, at least 66000."""
    maxwin = ct.td_maxwin(s)
    return maxwin if maxwin > MAXACKWINCONST else MAXACKWINCONST


def _check_6(
    ct: Entry, s: int, seq: i64, end: i64, sack: i64, liberal: bool
) -> tuple[int, str | None] | None:
    """The ≥6.1 order: I (with the overshoot workaround), III, II, IV."""
    r = 1 - s
    s_end, s_maxend = ct.td_end(s), ct.td_maxend(s)
    r_end, r_maxwin = ct.td_end(r), ct.td_maxwin(r)
    if ((seq - s_maxend - 1) & M) < HALF:  # not before(seq, td_maxend + 1)
        overshot = (end - s_maxend + 1) & M
        ack_ok = ((r_end - maxackwindow(ct, s) - 1 - sack) & M) >= HALF
        in_recv_win = r_maxwin and ((s_end - r_maxwin - 1 - end) & M) >= HALF
        sack_ok = ((sack - r_end - 1) & M) >= HALF
        if in_recv_win and ack_ok and overshot <= r_maxwin and sack_ok:
            ct.set_td_end(s, end)
            ct.add_td_flags(s, DATA_UNACKNOWLEDGED)
            return (ACCEPT, None) if liberal else (IGNORE, f"{overshot} bytes more than expected")
        bound = (s_maxend + 1) & M
        return _fail(liberal, INVALID, f"SEQ is over upper bound {bound} (over the window of the receiver)")
    if ((sack - r_end - 1) & M) < HALF:
        bound = (r_end + 1) & M
        return _fail(liberal, INVALID, f"ACK is over upper bound {bound} (ACKed data not seen yet)")
    low = (s_end - r_maxwin - 1) & M
    if r_maxwin and ((low - end) & M) < HALF:
        return _fail(liberal, IGNORE, f"SEQ is under lower bound {low} (already ACKed data retransmitted)")
    low = (r_end - maxackwindow(ct, s) - 1) & M
    if ((low - sack) & M) < HALF:
        return _fail(liberal, IGNORE, f"ignored ACK under lower bound {low} (possible overly delayed)")
    return None


def _check_5(
    ct: Entry, s: int, seq: i64, end: i64, sack: i64, liberal: bool
) -> tuple[int, str | None] | None:
    """The ≤6.0 check: all four bounds at once; the reason names the first failing in I, II, III, IV."""
    r = 1 - s
    s_end = ct.td_end(s)
    r_end, r_maxwin = ct.td_end(r), ct.td_maxwin(r)
    seq_ok = ((seq - ct.td_maxend(s) - 1) & M) >= HALF
    in_recv_win = not r_maxwin or (((s_end - r_maxwin - 1 - end) & M) >= HALF)
    ack_over_ok = ((sack - r_end - 1) & M) >= HALF
    ack_under_ok = ((r_end - maxackwindow(ct, s) - 1 - sack) & M) >= HALF
    if seq_ok and in_recv_win and ack_over_ok and ack_under_ok:
        return None
    if not seq_ok:
        why = "SEQ is over the upper bound (over the window of the receiver)"
    elif not in_recv_win:
        why = "SEQ is under the lower bound (already ACKed data retransmitted)"
    elif not ack_over_ok:
        why = "ACK is over the upper bound (ACKed data not seen yet)"
    else:
        why = "ACK is under the lower bound (possible overly delayed ACK)"
    return _fail(liberal, INVALID, "nf_ct_tcp: " + why)


def _fail(liberal: bool, action: int, reason: str) -> tuple[int, str | None]:
    """`nf_tcp_store_invalid`: be_liberal turns a failure into ACCEPT (with no td_* update)."""
    return (ACCEPT, None) if liberal else (action, reason)


def _update(ct: Entry, s: int, index: int, pkt: Packet, seq: i64, ack: i64, sack: i64, end: i64) -> None:
    """The td_* updates of an in-window segment from direction `s`, and retransmission counting."""
    r = 1 - s
    win: i64 = pkt.win if pkt.flags & SYN else (pkt.win << ct.td_scale(s)) & M
    swin = (win + ((sack - ack) & M)) & M
    if ct.td_maxwin(s) < swin:
        ct.set_td_maxwin(s, swin)
    if ((ct.td_end(s) - end) & M) >= HALF:
        ct.set_td_end(s, end)
        ct.add_td_flags(s, DATA_UNACKNOWLEDGED)
    if pkt.flags & ACK:
        if not ct.td_flags(s) & MAXACK_SET:
            ct.set_td_maxack(s, ack)
            ct.add_td_flags(s, MAXACK_SET)
        elif ((ct.td_maxack(s) - ack) & M) >= HALF:
            ct.set_td_maxack(s, ack)
    s_maxend = ct.td_maxend(s)
    if ct.td_maxwin(r) != 0 and ((s_maxend - end) & M) >= HALF:
        ct.set_td_maxwin(r, (ct.td_maxwin(r) + end - s_maxend) & M)
    right = (sack + win) & M
    if ((ct.td_maxend(r) - 1 - right) & M) >= HALF:
        ct.set_td_maxend(r, (right + 1) & M if win == 0 else right)
    if ack == ct.td_end(r):
        ct.clear_td_flags(r, DATA_UNACKNOWLEDGED)
    if index == Index.ACK:
        note_ack(ct, s, seq, ack, end, pkt.win)


def note_ack(ct: Entry, s: int, seq: i64, ack: i64, end: i64, win: int) -> None:
    """Retransmission counting: the same ACK segment again from the same side is one more retransmission
    (`retrans` is a u8 in the kernel: it wraps)."""
    if (
        ct.last_dir == s
        and ct.last_seq == seq
        and ct.last_ack == ack
        and ct.last_end == end
        and ct.last_win == win
    ):
        ct.retrans = (ct.retrans + 1) & 0xFF
    else:
        ct.last_dir = s
        ct.last_seq = seq
        ct.last_ack = ack
        ct.last_end = end
        ct.last_win = win
        ct.retrans = 0
