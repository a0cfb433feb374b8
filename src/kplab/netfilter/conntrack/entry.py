"""One conntrack entry (`struct nf_conn`) as lean plain data, and tuple keys packed into integers.

A table key is one int: src(32) dst(32) sport(16) dport(16) proto(8). One int per key, shared
by the dict and the entry, keeps an entry small; `FiveTuple`s are made only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

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


def pack(src: int, dst: int, proto: int, sport: int, dport: int) -> int:
    return (((((src << 32) | dst) << 16 | sport) << 16 | dport) << 8) | proto


def unpack(key: int) -> FiveTuple:
    return FiveTuple(
        key >> 72, (key >> 40) & 0xFFFFFFFF, key & 0xFF, (key >> 24) & 0xFFFF, (key >> 8) & 0xFFFF
    )


def invert_key(key: int) -> int:
    """The tuple seen from the other side (`nf_ct_invert_tuple` for port protocols)."""
    t = unpack(key)
    return pack(t.dst, t.src, t.proto, t.dport, t.sport)


@dataclass(slots=True)
class TcpSide:
    """`struct ip_ct_tcp_state`: what conntrack knows of one direction's sender."""

    td_end: int = 0
    td_maxend: int = 0
    td_maxwin: int = 0
    td_maxack: int = 0
    td_scale: int = 0
    flags: int = 0

    def reset(self) -> None:
        """`nf_ct_tcp_state_reset`: forget everything but BE_LIBERAL."""
        self.td_end = self.td_maxend = self.td_maxwin = self.td_maxack = self.td_scale = 0
        self.flags &= BE_LIBERAL


@dataclass(slots=True)
class TcpInfo:
    """`struct ip_ct_tcp`: the connection-wide TCP tracking state."""

    orig: TcpSide = field(default_factory=TcpSide)
    reply: TcpSide = field(default_factory=TcpSide)
    state: int = 0
    retrans: int = 0
    last_dir: int = 0
    last_index: int = 5  # Index.NONE
    last_seq: int = 0
    last_ack: int = 0
    last_end: int = 0
    last_win: int = 0
    last_wscale: int = 0
    last_flags: int = 0

    def side(self, direction: int) -> TcpSide:
        return self.reply if direction else self.orig


@dataclass(slots=True)
class Entry:
    """A connection: its two tuples (packed keys), status bits, expiry and protocol state.

    `reply_key` is the inverse of `orig_key` until NAT binds: then it is the tuple replies
    really carry. `timeout_ns` is the absolute expiry time; `mark` is the connection mark.
    """

    orig_key: int
    reply_key: int
    proto: int
    status: int = 0
    timeout_ns: int = 0
    mark: int = 0
    tcp: TcpInfo | None = None
    udp_stream_ns: int = 0  # UDP: the time after which a replied flow becomes a stream
    acct: list[int] | None = (
        None  # nf_conntrack_acct=1: [orig packets, orig bytes, reply packets, reply bytes]
    )

    @property
    def orig(self) -> FiveTuple:
        return unpack(self.orig_key)

    @property
    def reply(self) -> FiveTuple:
        return unpack(self.reply_key)

    @property
    def assured(self) -> bool:
        return bool(self.status & IPS_ASSURED)
