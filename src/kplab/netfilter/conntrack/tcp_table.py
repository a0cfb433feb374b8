"""The TCP conntrack state machine as data (mirrors `tcp_conntracks[][][]` in nf_conntrack_proto_tcp.c).

Theory of operation. Conntrack sits in the middle of a TCP connection and guesses, from the
segments it sees in both directions, where the two endpoints are. Each segment is reduced to an
*index* (RST, SYN, SYN/ACK, FIN, ACK or NONE: `segment_index`); the pair (direction, index) and
the entry's current state select the next state in `TRANSITIONS`. Two pseudo-states are not
states at all: `IV` (the segment is invalid: the packet leaves without its entry) and `IG`
(ignored: the packet keeps its entry but updates nothing, because conntrack may be the one out of
sync, e.g. a SYN on an established connection that the server will answer with a RST or a
challenge ACK). A transition is only a proposal: `tcp_packet` (tcp.py) then runs the special
cases (reopen from TIME_WAIT/CLOSE, challenge ACKs, RST validation) and the window check
(`tcp_window.tcp_in_window`); only a segment that passes them commits the new state.

The table is the same in every kernel profile kplab models (4.19 through 6.18).
"""

from __future__ import annotations

from enum import IntEnum


class TcpState(IntEnum):
    """`enum tcp_conntrack`, kernel values and names (as `conntrack -L` prints them)."""

    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9


IV = 10  # pseudo-state: invalid (TCP_CONNTRACK_MAX)
IG = 11  # pseudo-state: ignore (TCP_CONNTRACK_IGNORE)


class Index(IntEnum):
    """`enum tcp_bit_set`: what a segment is, for the state machine."""

    SYN = 0
    SYNACK = 1
    FIN = 2
    ACK = 3
    RST = 4
    NONE = 5


ORIGINAL = 0
REPLY = 1

# Columns: the old state. Rows: the segment's index. One table per direction.
_COLUMNS = "NO SS SR ES FW CW LA TW CL S2"
_ORIGINAL_ROWS = """
SYN     SS SS IG IG IG IG IG SS SS S2
SYNACK  IV IV SR IV IV IV IV IV IV SR
FIN     IV IV FW FW LA LA LA TW CL IV
ACK     ES IV ES ES CW CW TW TW CL IV
RST     IV CL CL CL CL CL CL CL CL CL
NONE    IV IV IV IV IV IV IV IV IV IV
"""
_REPLY_ROWS = """
SYN     IV S2 IV IV IV IV IV SS IV S2
SYNACK  IV SR IG IG IG IG IG IG IG SR
FIN     IV IV FW FW LA LA LA TW CL IV
ACK     IV IG SR ES CW CW TW TW CL IG
RST     IV CL CL CL CL CL CL CL CL CL
NONE    IV IV IV IV IV IV IV IV IV IV
"""
_CODES = dict(zip(_COLUMNS.split(), range(10), strict=True)) | {"IV": IV, "IG": IG}


def _parse(rows: str) -> tuple[tuple[int, ...], ...]:
    table: list[tuple[int, ...]] = [()] * len(Index)
    for line in rows.strip().splitlines():
        name, *cells = line.split()
        table[Index[name]] = tuple(_CODES[c] for c in cells)
    return tuple(table)


# TRANSITIONS[direction][index][old_state] -> new state, IV or IG.
TRANSITIONS: tuple[tuple[tuple[int, ...], ...], ...] = (_parse(_ORIGINAL_ROWS), _parse(_REPLY_ROWS))

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

# Flag combinations `tcp_error` accepts once PSH, ECE and CWR are masked out.
VALID_FLAGS = frozenset(
    {SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG, ACK, ACK | URG}
)


def segment_index(flags: int) -> int:
    """`get_conntrack_index`: RST wins, then SYN (SYN/ACK with ACK), then FIN, then ACK."""
    if flags & RST:
        return Index.RST
    if flags & SYN:
        return Index.SYNACK if flags & ACK else Index.SYN
    if flags & FIN:
        return Index.FIN
    if flags & ACK:
        return Index.ACK
    return Index.NONE
