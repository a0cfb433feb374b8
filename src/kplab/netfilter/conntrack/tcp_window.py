"""`tcp_in_window`: the four sequence/ACK bounds, window scaling, SACK and the td_* updates.

Per direction conntrack keeps (`TcpSide`): `td_end` (highest seq+len sent), `td_maxend` (the
right edge the peer advertised: the furthest this side may send), `td_maxwin` (largest window
this side advertised, plus SACK slack and overshoots) and `td_maxack` (highest ACK sent).
A segment from `sender` to `receiver` must satisfy, modulo 2**32:

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

from kplab.netfilter.conntrack.entry import (
    BE_LIBERAL,
    DATA_UNACKNOWLEDGED,
    MAXACK_SET,
    SACK_PERM,
    WINDOW_SCALE,
    TcpInfo,
    TcpSide,
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


def tcp_options(pkt: Packet, side: TcpSide, keep_liberal: bool) -> None:
    """`tcp_options`: window scale (capped at 14) and SACK-permitted from a SYN's options.

    Runs only when the header carries options at all (the kernel returns early otherwise).
    """
    if not has_options(pkt):
        return
    side.td_scale = 0
    side.flags &= BE_LIBERAL if keep_liberal else 0
    if pkt.sackok:
        side.flags |= SACK_PERM
    if pkt.wscale is not None:
        side.td_scale = min(pkt.wscale, MAX_WSCALE)
        side.flags |= WINDOW_SCALE


def init_sender(
    sender: TcpSide, receiver: TcpSide, pkt: Packet, end: int, direction: int, profile: Profile
) -> None:
    """`tcp_init_sender`: a SYN/ACK, or a SYN from the reply side, (re)starts this direction."""
    sender.td_end = sender.td_maxend = end
    sender.td_maxwin = pkt.win or 1
    tcp_options(pkt, sender, profile.keep_liberal_on_reinit)
    both_scale = sender.flags & WINDOW_SCALE and receiver.flags & WINDOW_SCALE
    if not both_scale and (direction == 1 or not profile.reinit_any_direction):
        sender.td_scale = receiver.td_scale = 0


def _highest_sack(pkt: Packet, sack: int) -> int:
    """`tcp_sack`: the highest right edge among the SACK blocks, if after the ACK."""
    for _left, right in pkt.sack:
        if ((sack - right) & M) >= HALF:
            sack = right & M
    return sack


def _may_reinit(ti: TcpInfo, direction: int, flags: int, profile: Profile) -> bool:
    if profile.reinit_any_direction:
        return bool(flags & SYN) and ti.state in (TcpState.SYN_SENT, TcpState.SYN_RECV)
    return (ti.state == TcpState.SYN_SENT and direction == 0) or (
        ti.state == TcpState.SYN_RECV and direction == 1
    )


def _start_sender(
    ti: TcpInfo, sender: TcpSide, receiver: TcpSide, pkt: Packet, end: int, sack: int, direction: int
) -> None:
    """First segment seen from this side of a picked-up connection: trust its numbers."""
    sender.td_end = end
    swin = (pkt.win << sender.td_scale) & M
    sender.td_maxwin = swin or 1
    sender.td_maxend = (end + sender.td_maxwin) & M
    if receiver.td_maxwin == 0:
        receiver.td_end = receiver.td_maxend = sack
    elif sack == (receiver.td_end + 1) & M:
        receiver.td_end = sack


def tcp_in_window(
    ti: TcpInfo, direction: int, index: int, pkt: Packet, profile: Profile, be_liberal: bool
) -> tuple[int, str | None]:
    """`tcp_in_window`: ACCEPT / IGNORE / INVALID and the kernel's reason text."""
    sender = ti.reply if direction else ti.orig
    receiver = ti.orig if direction else ti.reply
    flags = pkt.flags
    seq = pkt.seq & M
    ack = sack = pkt.ack & M
    end = (seq + pkt.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & M
    if receiver.flags & SACK_PERM and pkt.sack:
        sack = _highest_sack(pkt, sack)

    if sender.td_maxwin == 0:
        if flags & SYN:
            init_sender(sender, receiver, pkt, end, direction, profile)
            if not flags & ACK:
                return ACCEPT, None  # simultaneous open
        else:
            _start_sender(ti, sender, receiver, pkt, end, sack, direction)
    elif (
        ((end - sender.td_end) & M)
        and ((sender.td_end - end) & M) >= HALF
        and _may_reinit(ti, direction, flags, profile)
    ):
        if profile.reinit_any_direction:
            init_sender(sender, receiver, pkt, end, direction, profile)
            if direction == 1 and not flags & ACK:
                return ACCEPT, None
        else:
            sender.td_end = sender.td_maxend = end
            sender.td_maxwin = pkt.win or 1
            tcp_options(pkt, sender, False)

    if not flags & ACK or (flags & RST and ack == 0):
        ack = sack = receiver.td_end
    if flags & RST and seq == 0 and ti.state == TcpState.SYN_SENT:
        seq = end = sender.td_end

    liberal = be_liberal or bool(sender.flags & BE_LIBERAL)
    if profile.window_ignore:
        verdict = _check_6(sender, receiver, seq, end, sack, liberal)
    else:
        verdict = _check_5(sender, receiver, seq, end, sack, liberal)
    if verdict is not None:
        return verdict
    _update(ti, sender, receiver, direction, index, pkt, seq, ack, sack, end)
    return ACCEPT, None


def _maxackwindow(sender: TcpSide) -> int:
    return sender.td_maxwin if sender.td_maxwin > MAXACKWINCONST else MAXACKWINCONST


def _check_6(
    sender: TcpSide, receiver: TcpSide, seq: int, end: int, sack: int, liberal: bool
) -> tuple[int, str | None] | None:
    """The ≥6.1 order: I (with the overshoot workaround), III, II, IV."""
    if ((seq - sender.td_maxend - 1) & M) < HALF:  # not before(seq, td_maxend + 1)
        overshot = (end - sender.td_maxend + 1) & M
        ack_ok = ((receiver.td_end - _maxackwindow(sender) - 1 - sack) & M) >= HALF
        in_recv_win = receiver.td_maxwin and ((sender.td_end - receiver.td_maxwin - 1 - end) & M) >= HALF
        sack_ok = ((sack - receiver.td_end - 1) & M) >= HALF
        if in_recv_win and ack_ok and overshot <= receiver.td_maxwin and sack_ok:
            sender.td_end = end
            sender.flags |= DATA_UNACKNOWLEDGED
            return (ACCEPT, None) if liberal else (IGNORE, f"{overshot} bytes more than expected")
        bound = (sender.td_maxend + 1) & M
        return _fail(liberal, INVALID, f"SEQ is over upper bound {bound} (over the window of the receiver)")
    if ((sack - receiver.td_end - 1) & M) < HALF:
        bound = (receiver.td_end + 1) & M
        return _fail(liberal, INVALID, f"ACK is over upper bound {bound} (ACKed data not seen yet)")
    low = (sender.td_end - receiver.td_maxwin - 1) & M
    if receiver.td_maxwin and ((low - end) & M) < HALF:
        return _fail(liberal, IGNORE, f"SEQ is under lower bound {low} (already ACKed data retransmitted)")
    low = (receiver.td_end - _maxackwindow(sender) - 1) & M
    if ((low - sack) & M) < HALF:
        return _fail(liberal, IGNORE, f"ignored ACK under lower bound {low} (possible overly delayed)")
    return None


def _check_5(
    sender: TcpSide, receiver: TcpSide, seq: int, end: int, sack: int, liberal: bool
) -> tuple[int, str | None] | None:
    """The ≤6.0 check: all four bounds at once; the reason names the first failing in I, II, III, IV."""
    seq_ok = ((seq - sender.td_maxend - 1) & M) >= HALF
    in_recv_win = not receiver.td_maxwin or (((sender.td_end - receiver.td_maxwin - 1 - end) & M) >= HALF)
    ack_over_ok = ((sack - receiver.td_end - 1) & M) >= HALF
    ack_under_ok = ((receiver.td_end - _maxackwindow(sender) - 1 - sack) & M) >= HALF
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


def _update(
    ti: TcpInfo,
    sender: TcpSide,
    receiver: TcpSide,
    direction: int,
    index: int,
    pkt: Packet,
    seq: int,
    ack: int,
    sack: int,
    end: int,
) -> None:
    """The td_* updates of an in-window segment, and retransmission counting.

    Equal sequence numbers are kept as one int object (an ACK of all the receiver sent is its
    `td_end`; a segment ending at `td_end` is that `td_end`): same values, less memory per entry.
    """
    if ack == receiver.td_end:
        ack = receiver.td_end
    if end == sender.td_end:
        end = sender.td_end
    if seq == end:
        seq = end
    win = pkt.win if pkt.flags & SYN else (pkt.win << sender.td_scale) & M
    swin = (win + ((sack - ack) & M)) & M
    if sender.td_maxwin < swin:
        sender.td_maxwin = swin
    if ((sender.td_end - end) & M) >= HALF:
        sender.td_end = end
        sender.flags |= DATA_UNACKNOWLEDGED
    if pkt.flags & ACK:
        if not sender.flags & MAXACK_SET:
            sender.td_maxack = ack
            sender.flags |= MAXACK_SET
        elif ((sender.td_maxack - ack) & M) >= HALF:
            sender.td_maxack = ack
    if receiver.td_maxwin != 0 and ((sender.td_maxend - end) & M) >= HALF:
        receiver.td_maxwin = (receiver.td_maxwin + end - sender.td_maxend) & M
    right = (sack + win) & M
    if ((receiver.td_maxend - 1 - right) & M) >= HALF:
        receiver.td_maxend = (right + 1) & M if win == 0 else right
    if ack == receiver.td_end:
        receiver.flags &= ~DATA_UNACKNOWLEDGED
    if index == Index.ACK:
        if (
            ti.last_dir == direction
            and ti.last_seq == seq
            and ti.last_ack == ack
            and ti.last_end == end
            and ti.last_win == pkt.win
        ):
            ti.retrans += 1
        else:
            ti.last_dir = direction
            ti.last_seq = seq
            ti.last_ack = ack
            ti.last_end = end
            ti.last_win = pkt.win
            ti.retrans = 0
