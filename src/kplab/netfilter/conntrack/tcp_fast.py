"""The fast path for the common packet: a plain ACK/data segment on an ASSURED ESTABLISHED entry.

Behaviourally identical to `tcp_packet` for such a packet when all four window bounds pass (the
state table maps ESTABLISHED + ACK to ESTABLISHED in both directions and no special case
applies); anything else returns False *before* changing state and the general path runs.
It exists only for speed: one function, no intermediate tuples.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

from kplab.netfilter.conntrack.entry import DATA_UNACKNOWLEDGED, MAXACK_SET, Entry
from kplab.netfilter.conntrack.profiles import TIMEOUT_RETRANS, TIMEOUT_UNACK
from kplab.netfilter.conntrack.tcp_table import ACK, FIN, RST, SYN, URG, Index, TcpState
from kplab.netfilter.conntrack.tcp_window import HALF, MAXACKWINCONST, M, note_ack
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
    ct: Entry,
    s: int,
    pkt: Packet,
    timeouts: tuple[int, ...],
    max_retrans: int,
    now: i64,
) -> bool:
    """`nf_conntrack_tcp_packet` + `tcp_in_window` for an in-window ACK from direction `s`."""
    if ct.state != _ESTABLISHED or pkt.flags & _ACK_ONLY_MASK != _ACK or pkt.sack:
        return False
    r = 1 - s
    r_maxwin = ct.td_maxwin(r)
    s_maxwin = ct.td_maxwin(s)
    if not r_maxwin or not s_maxwin:
        return False
    seq: i64 = pkt.seq & _M
    ack: i64 = pkt.ack & _M
    end: i64 = (seq + pkt.length) & _M
    s_end = ct.td_end(s)
    r_end = ct.td_end(r)
    s_maxend = ct.td_maxend(s)
    maxackwin = s_maxwin if s_maxwin > _MAXACKWIN else _MAXACKWIN
    if (
        ((seq - s_maxend - 1) & _M) < _HALF  # I
        or ((ack - r_end - 1) & _M) < _HALF  # III
        or ((s_end - r_maxwin - 1 - end) & _M) < _HALF  # II
        or ((r_end - maxackwin - 1 - ack) & _M) < _HALF  # IV
    ):
        return False
    raw_win = pkt.win
    win: i64 = (raw_win << ct.td_scale(s)) & _M
    if s_maxwin < win:
        ct.set_td_maxwin(s, win)
    s_flags = ct.td_flags(s)
    if ((s_end - end) & _M) >= _HALF:
        ct.set_td_end(s, end)
        s_flags |= DATA_UNACKNOWLEDGED
    if not s_flags & MAXACK_SET:
        ct.set_td_maxack(s, ack)
        s_flags |= MAXACK_SET
    elif ((ct.td_maxack(s) - ack) & _M) >= _HALF:
        ct.set_td_maxack(s, ack)
    ct.set_td_flags(s, s_flags)
    if ((s_maxend - end) & _M) >= _HALF:
        ct.set_td_maxwin(r, (r_maxwin + end - s_maxend) & _M)
    right = (ack + win) & _M
    if ((ct.td_maxend(r) - 1 - right) & _M) >= _HALF:
        ct.set_td_maxend(r, (right + 1) & _M if win == 0 else right)
    if ack == r_end:
        ct.clear_td_flags(r, DATA_UNACKNOWLEDGED)
    note_ack(ct, s, seq, ack, end, raw_win)
    ct.last_index = _INDEX_ACK
    state_timeout = timeouts[_ESTABLISHED]
    if ct.retrans >= max_retrans and state_timeout > timeouts[_RETRANS]:
        timeout = timeouts[_RETRANS]
    elif (ct.td_flags0 | ct.td_flags1) & DATA_UNACKNOWLEDGED and state_timeout > timeouts[_UNACK]:
        timeout = timeouts[_UNACK]
    elif ct.last_win == 0 and state_timeout > timeouts[_RETRANS]:
        timeout = timeouts[_RETRANS]
    else:
        timeout = state_timeout
    ct.timeout_ns = now + timeout
    return True
