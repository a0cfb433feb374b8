"""One conntrack entry (`struct nf_conn` with its `struct ip_ct_tcp`) as one lean object, and
tuple keys packed into integers.

A table key is one int: src(32) dst(32) sport(16) dport(16) proto(8). One int per key, shared
by the dict and the entry, keeps an entry small; `FiveTuple`s are made only when asked for.

The entry is one object with fixed-width fields (mypy_extensions `i64`/`i32`/`u8`: unboxed in
the compiled build, plain ints in pure Python), the TCP state inline: a compiled object costs
40 bytes before its first field, so the kernel's `nf_conn` + `ip_ct_tcp` + `seen[2]` are not four
objects here. The kernel's per-direction `seen[dir]` (`struct ip_ct_tcp_state`) is the fields
`td_*0` (ORIGINAL) and `td_*1` (REPLY), read and written through methods that take the direction
(`entry.td_end(d)`, `entry.set_td_end(d, v)`), as the kernel indexes `seen[d]`. `TcpSide` is a
copy of one direction, for inspection.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Final, final

from mypy_extensions import i32, i64, u8

from kplab.netfilter.ctview import CtStatus, FiveTuple

# ip_ct_tcp_state.flags (kernel values)
WINDOW_SCALE: Final = 0x01
SACK_PERM: Final = 0x02
CLOSE_INIT: Final = 0x04
BE_LIBERAL: Final = 0x08
DATA_UNACKNOWLEDGED: Final = 0x10
MAXACK_SET: Final = 0x20
EXP_CHALLENGE_ACK: Final = 0x40
SIMULTANEOUS_OPEN: Final = 0x80

# IPS_* status bits (kernel values): the ones rules can test come from ctview.CtStatus, as plain
# ints for the hot path; the rest only the tracker uses.
IPS_EXPECTED: Final = int(CtStatus.EXPECTED)
IPS_SEEN_REPLY: Final = int(CtStatus.SEEN_REPLY)
IPS_ASSURED: Final = int(CtStatus.ASSURED)
IPS_CONFIRMED: Final = int(CtStatus.CONFIRMED)
IPS_SRC_NAT: Final = int(CtStatus.SRC_NAT)
IPS_DST_NAT: Final = int(CtStatus.DST_NAT)
IPS_SRC_NAT_DONE: Final = 1 << 7
IPS_DST_NAT_DONE: Final = 1 << 8
IPS_DYING: Final = 1 << 9

INDEX_NONE: Final = 5  # tcp_table.Index.NONE: no segment seen yet


def pack(src: int, dst: int, proto: int, sport: int, dport: int) -> int:
    """The key: src(32) dst(32) sport(16) dport(16) proto(8). The ports and protocol are one small
    int and `src << 32 | dst` fits a compiled tagged int for most addresses (below 64.0.0.0): only
    the last two operations make a big int."""
    return (((src << 32) | dst) << 40) | (sport << 24 | dport << 8 | proto)


def unpack(key: int) -> FiveTuple:
    return FiveTuple(
        key >> 72, (key >> 40) & 0xFFFFFFFF, key & 0xFF, (key >> 24) & 0xFFFF, (key >> 8) & 0xFFFF
    )


def invert_key(key: int) -> int:
    """The tuple seen from the other side (`nf_ct_invert_tuple` for port protocols)."""
    t = unpack(key)
    return pack(t.dst, t.src, t.proto, t.dport, t.sport)


def without(flags: int, bits: int) -> int:
    """`flags & ~bits`, never negative (so it fits the unsigned fields)."""
    return flags & ~bits


@dataclass(frozen=True, slots=True)
class TcpSide:
    """A copy of `struct ip_ct_tcp_state`: what conntrack knows of one direction's sender."""

    td_end: int
    td_maxend: int
    td_maxwin: int
    td_maxack: int
    td_scale: int
    flags: int


@final
class Entry:
    """A connection: its two tuples (packed keys), status bits, expiry and, for TCP, its tracking state.

    `reply_key` is the inverse of `orig_key` until NAT binds: then it is the tuple replies
    really carry. `timeout_ns` is the absolute expiry time; `mark` is the connection mark.
    The TCP fields (`struct ip_ct_tcp`) are zero for other protocols. `__init__` defines the
    fields widest first, so the compiled object has no padding.
    """

    __slots__ = (
        "acct",
        "last_ack",
        "last_dir",
        "last_end",
        "last_flags",
        "last_index",
        "last_seq",
        "last_win",
        "last_wscale",
        "mark",
        "orig_key",
        "proto",
        "reply_key",
        "retrans",
        "state",
        "status",
        "td_end0",
        "td_end1",
        "td_flags0",
        "td_flags1",
        "td_maxack0",
        "td_maxack1",
        "td_maxend0",
        "td_maxend1",
        "td_maxwin0",
        "td_maxwin1",
        "td_scale0",
        "td_scale1",
        "timeout_ns",
        "udp_stream_ns",
    )

    def __init__(self, orig_key: int, reply_key: int, proto: int) -> None:
        self.status: i32 = 0  # first: it fills the compiled object's 4 bytes after mypyc's bitmap
        self.orig_key = orig_key
        self.reply_key = reply_key
        # nf_conntrack_acct=1: [orig packets, orig bytes, reply packets, reply bytes]
        self.acct: list[int] | None = None
        self.timeout_ns: i64 = 0
        self.udp_stream_ns: i64 = 0  # UDP: the time after which a replied flow becomes a stream
        self.mark: i64 = 0
        # seen[0] and seen[1] (u32 in the kernel: sequence numbers and windows)
        self.td_end0: i64 = 0
        self.td_maxend0: i64 = 0
        self.td_maxwin0: i64 = 0
        self.td_maxack0: i64 = 0
        self.td_end1: i64 = 0
        self.td_maxend1: i64 = 0
        self.td_maxwin1: i64 = 0
        self.td_maxack1: i64 = 0
        # the last segment seen (retransmission detection, resynchronisation)
        self.last_seq: i64 = 0
        self.last_ack: i64 = 0
        self.last_end: i64 = 0
        self.last_win: i64 = 0  # the raw 16-bit window
        self.proto: u8 = proto
        self.td_scale0: u8 = 0
        self.td_flags0: u8 = 0
        self.td_scale1: u8 = 0
        self.td_flags1: u8 = 0
        self.state: u8 = 0  # tcp_table.TcpState
        self.retrans: u8 = 0
        self.last_dir: u8 = 0
        self.last_index: u8 = INDEX_NONE
        self.last_wscale: u8 = 0
        self.last_flags: u8 = 0

    @property
    def orig(self) -> FiveTuple:
        return unpack(self.orig_key)

    @property
    def reply(self) -> FiveTuple:
        return unpack(self.reply_key)

    @property
    def assured(self) -> bool:
        return bool(self.status & IPS_ASSURED)

    # -- seen[d], d = 0 (ORIGINAL) or 1 (REPLY) ----------------------------------------------
    def td_end(self, d: int) -> i64:
        return self.td_end1 if d else self.td_end0

    def td_maxend(self, d: int) -> i64:
        return self.td_maxend1 if d else self.td_maxend0

    def td_maxwin(self, d: int) -> i64:
        return self.td_maxwin1 if d else self.td_maxwin0

    def td_maxack(self, d: int) -> i64:
        return self.td_maxack1 if d else self.td_maxack0

    def td_scale(self, d: int) -> int:
        return self.td_scale1 if d else self.td_scale0

    def td_flags(self, d: int) -> int:
        return self.td_flags1 if d else self.td_flags0

    def set_td_end(self, d: int, value: i64) -> None:
        if d:
            self.td_end1 = value
        else:
            self.td_end0 = value

    def set_td_maxend(self, d: int, value: i64) -> None:
        if d:
            self.td_maxend1 = value
        else:
            self.td_maxend0 = value

    def set_td_maxwin(self, d: int, value: i64) -> None:
        if d:
            self.td_maxwin1 = value
        else:
            self.td_maxwin0 = value

    def set_td_maxack(self, d: int, value: i64) -> None:
        if d:
            self.td_maxack1 = value
        else:
            self.td_maxack0 = value

    def set_td_scale(self, d: int, value: int) -> None:
        if d:
            self.td_scale1 = value
        else:
            self.td_scale0 = value

    def set_td_flags(self, d: int, value: int) -> None:
        if d:
            self.td_flags1 = value
        else:
            self.td_flags0 = value

    def add_td_flags(self, d: int, bits: int) -> None:
        self.set_td_flags(d, self.td_flags(d) | bits)

    def clear_td_flags(self, d: int, bits: int) -> None:
        self.set_td_flags(d, without(self.td_flags(d), bits))

    def reset_side(self, d: int) -> None:
        """`nf_ct_tcp_state_reset`: forget everything of seen[d] but BE_LIBERAL."""
        self.set_td_end(d, 0)
        self.set_td_maxend(d, 0)
        self.set_td_maxwin(d, 0)
        self.set_td_maxack(d, 0)
        self.set_td_scale(d, 0)
        self.set_td_flags(d, self.td_flags(d) & BE_LIBERAL)

    def side(self, d: int) -> TcpSide:
        """A copy of seen[d] (for inspection; the tracker reads the fields)."""
        return TcpSide(
            self.td_end(d), self.td_maxend(d), self.td_maxwin(d), self.td_maxack(d),
            self.td_scale(d), self.td_flags(d),
        )  # fmt: skip

    def tcp_fields(self) -> tuple[int, ...]:
        """The whole TCP tracking state (`struct ip_ct_tcp`) as one tuple, to compare two entries."""
        return (
            *astuple(self.side(0)), *astuple(self.side(1)),
            self.state, self.retrans, self.last_dir, self.last_index, self.last_seq,
            self.last_ack, self.last_end, self.last_win, self.last_wscale, self.last_flags,
        )  # fmt: skip
