"""The fast path for the common packet: a plain ACK/data segment on an ASSURED ESTABLISHED entry.

Behaviourally identical to `tcp_packet` for such a packet when all four window bounds pass (the
state table maps ESTABLISHED + ACK to ESTABLISHED in both directions and no special case
applies); anything else returns False *before* changing state and the general path runs.
It exists only for speed: one function, no intermediate tuples.
"""

from __future__ import annotations

from typing import Final

from kplab.netfilter.conntrack.entry import DATA_UNACKNOWLEDGED, MAXACK_SET, Entry, TcpInfo
from kplab.netfilter.conntrack.profiles import TIMEOUT_RETRANS, TIMEOUT_UNACK
from kplab.netfilter.conntrack.tcp_table import ACK, FIN, RST, SYN, URG, Index, TcpState
from kplab.netfilter.conntrack.tcp_window import HALF, MAXACKWINCONST, M
from kplab.packet import Packet

# Local Final copies of the constants defined in tcp_table, profiles and tcp_window (the enum
# members as plain ints), so the compiled fast path reads no module global and no enum.
_M: Final = M
_HALF: Final = HALF
_MAXACKWIN: Final = MAXACKWINCONST
_ACK: Final = ACK
_ACK_ONLY_MASK: Final = FIN | SYN | RST | ACK | URG  # of these, exactly ACK
_ESTABLISHED: Final = int(TcpState.ESTABLISHED)
_INDEX_ACK: Final = int(Index.ACK)
_RETRANS: Final = TIMEOUT_RETRANS
_UNACK: Final = TIMEOUT_UNACK


def established_ack(
    entry: Entry,
    ti: TcpInfo,
    direction: int,
    pkt: Packet,
    timeouts: tuple[int, ...],
    max_retrans: int,
    now: int,
) -> bool:
    """`nf_conntrack_tcp_packet` + `tcp_in_window` for an in-window ACK on an established entry."""
    if ti.state != _ESTABLISHED or pkt.flags & _ACK_ONLY_MASK != _ACK or pkt.sack:
        return False
    if direction:
        sender, receiver = ti.reply, ti.orig
    else:
        sender, receiver = ti.orig, ti.reply
    r_maxwin = receiver.td_maxwin
    if not r_maxwin or not sender.td_maxwin:
        return False
    seq = pkt.seq & _M
    ack = pkt.ack & _M
    length = pkt.length
    end = (seq + length) & _M if length else seq  # equal numbers share one int object
    s_end = sender.td_end
    r_end = receiver.td_end
    if ack == r_end:
        ack = r_end
    s_maxwin = sender.td_maxwin
    maxackwin = s_maxwin if s_maxwin > _MAXACKWIN else _MAXACKWIN
    if (
        ((seq - sender.td_maxend - 1) & _M) < _HALF  # I
        or ((ack - r_end - 1) & _M) < _HALF  # III
        or ((s_end - r_maxwin - 1 - end) & _M) < _HALF  # II
        or ((r_end - maxackwin - 1 - ack) & _M) < _HALF  # IV
    ):
        return False
    raw_win = pkt.win
    win = (raw_win << sender.td_scale) & _M
    if s_maxwin < win:
        sender.td_maxwin = win
    if ((s_end - end) & _M) >= _HALF:
        sender.td_end = end
        sender.flags |= DATA_UNACKNOWLEDGED
    elif end == s_end:
        end = s_end
    if not sender.flags & MAXACK_SET:
        sender.td_maxack = ack
        sender.flags |= MAXACK_SET
    elif ((sender.td_maxack - ack) & _M) >= _HALF:
        sender.td_maxack = ack
    s_maxend = sender.td_maxend
    if ((s_maxend - end) & _M) >= _HALF:
        receiver.td_maxwin = (r_maxwin + end - s_maxend) & _M
    right = (ack + win) & _M
    if ((receiver.td_maxend - 1 - right) & _M) >= _HALF:
        receiver.td_maxend = (right + 1) & _M if win == 0 else right
    if ack == r_end:
        receiver.flags &= ~DATA_UNACKNOWLEDGED
    if (
        ti.last_dir == direction
        and ti.last_seq == seq
        and ti.last_ack == ack
        and ti.last_end == end
        and ti.last_win == raw_win
    ):
        ti.retrans += 1
    else:
        ti.last_dir = direction
        ti.last_seq = seq if length else end
        ti.last_ack = ack
        ti.last_end = end
        ti.last_win = raw_win
        ti.retrans = 0
    ti.last_index = _INDEX_ACK
    ti.last_dir = direction
    state_timeout = timeouts[_ESTABLISHED]
    if ti.retrans >= max_retrans and state_timeout > timeouts[_RETRANS]:
        timeout = timeouts[_RETRANS]
    elif (ti.orig.flags | ti.reply.flags) & DATA_UNACKNOWLEDGED and state_timeout > timeouts[_UNACK]:
        timeout = timeouts[_UNACK]
    elif ti.last_win == 0 and state_timeout > timeouts[_RETRANS]:
        timeout = timeouts[_RETRANS]
    else:
        timeout = state_timeout
    entry.timeout_ns = now + timeout
    return True
