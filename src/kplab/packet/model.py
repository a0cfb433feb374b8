"""The packet: an IPv4 header plus one L4 header, as a small mutable record.

Mutable on purpose: NAT rewrites addresses and ports in place as the packet crosses a node,
as the kernel rewrites the skb. Take `copy()` before keeping a packet (captures, duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Final

from mypy_extensions import i64

from kplab.packet.addr import fmt_ipport

TCP: Final = 6
UDP: Final = 17
ICMP: Final = 1
SCTP: Final = 132

PROTO_NUMBERS: dict[str, int] = {"tcp": TCP, "udp": UDP, "icmp": ICMP, "sctp": SCTP}
PROTO_NAMES: dict[int, str] = {v: k for k, v in PROTO_NUMBERS.items()}


class TcpFlags(IntFlag):
    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


_FLAG_LETTERS: Final = (
    ("S", TcpFlags.SYN),
    ("F", TcpFlags.FIN),
    ("R", TcpFlags.RST),
    ("P", TcpFlags.PSH),
    ("A", TcpFlags.ACK),
    ("U", TcpFlags.URG),
    ("E", TcpFlags.ECE),
    ("C", TcpFlags.CWR),
)


def flags_from_str(text: str) -> int:
    """`"SA"` -> SYN|ACK, `"PA"` -> PSH|ACK, `"R"` -> RST (the letters tcpdump prints; `.` is ACK)."""
    value = 0
    for ch in text:
        if ch == ".":
            value |= TcpFlags.ACK
            continue
        for letter, flag in _FLAG_LETTERS:
            if ch == letter:
                value |= flag
                break
        else:
            raise ValueError(f"unknown TCP flag letter {ch!r} in {text!r}")
    return value


def flags_to_str(flags: int) -> str:
    return "".join(letter for letter, flag in _FLAG_LETTERS if flags & flag) or "-"


@dataclass(slots=True, init=False)
class Packet:
    """One IPv4 packet. Ports are 0 for ICMP; TCP fields are 0 for other protocols.

    `length` is the L4 payload length in bytes; the payload itself is not carried (kplab
    models sequence space, not content), except `data` when a test or the lab needs bytes.
    For ICMP errors, `inner` is the quoted packet (the kernel matches it to its flow).

    The TCP header's numbers (flags, sequence and acknowledgment numbers, window, length, ttl) are
    fixed-width `i64` (compiled, stored and computed unboxed); they are the wire's values, so sums
    and masks stay far from 64 bits. Addresses, ports and the protocol stay `int`: conntrack shifts
    them together into one 104-bit tuple key, which an `i64` would silently wrap in the compiled
    build. `__init__` is written out (not the dataclass's, which runs interpreted) so that the
    compiled build constructs a packet natively.
    """

    src: int
    dst: int
    proto: int
    sport: int
    dport: int
    flags: i64
    seq: i64
    ack: i64
    win: i64
    length: i64
    mss: int | None
    wscale: int | None
    sackok: bool
    sack: tuple[tuple[int, int], ...]
    icmp_type: i64
    icmp_code: i64
    inner: Packet | None
    ttl: i64
    uid: i64
    notes: list[str]
    data: bytes

    def __init__(
        self,
        src: int,
        dst: int,
        proto: int = TCP,
        sport: int = 0,
        dport: int = 0,
        flags: i64 = 0,
        seq: i64 = 0,
        ack: i64 = 0,
        win: i64 = 0,
        length: i64 = 0,
        mss: int | None = None,
        wscale: int | None = None,
        sackok: bool = False,
        sack: tuple[tuple[int, int], ...] = (),
        icmp_type: i64 = 0,
        icmp_code: i64 = 0,
        inner: Packet | None = None,
        ttl: i64 = 64,
        uid: i64 = 0,
        notes: list[str] | None = None,
        data: bytes = b"",
    ) -> None:
        self.src = src
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.flags = flags
        self.seq = seq
        self.ack = ack
        self.win = win
        self.length = length
        self.mss = mss
        self.wscale = wscale
        self.sackok = sackok
        self.sack = sack
        self.icmp_type = icmp_type
        self.icmp_code = icmp_code
        self.inner = inner
        self.ttl = ttl
        self.uid = uid
        self.notes = [] if notes is None else notes
        self.data = data

    def copy(self) -> Packet:
        return Packet(
            self.src,
            self.dst,
            self.proto,
            self.sport,
            self.dport,
            self.flags,
            self.seq,
            self.ack,
            self.win,
            self.length,
            self.mss,
            self.wscale,
            self.sackok,
            self.sack,
            self.icmp_type,
            self.icmp_code,
            self.inner,
            self.ttl,
            self.uid,
            list(self.notes),
            self.data,
        )

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: payload plus one for SYN and one for FIN."""
        return self.length + (1 if self.flags & TcpFlags.SYN else 0) + (1 if self.flags & TcpFlags.FIN else 0)

    def describe(self) -> str:
        """One line, tcpdump-like: `10.0.0.2:40000 > 192.168.0.2:80 S seq=0 ack=0 win=64240 len=0`."""
        head = f"{fmt_ipport(self.src, self.sport)} > {fmt_ipport(self.dst, self.dport)}"
        if self.proto == TCP:
            return (
                f"{head} {flags_to_str(self.flags)} seq={self.seq} ack={self.ack} "
                f"win={self.win} len={self.length}"
            )
        if self.proto == ICMP:
            return f"{head} icmp type={self.icmp_type} code={self.icmp_code}"
        return f"{head} {PROTO_NAMES.get(self.proto, str(self.proto))} len={self.length}"


# The kernel's icmp_send quotes as much of the offending datagram as fits in 576 bytes:
# 576 - 20 (IPv4 header) - 8 (ICMP header). REJECT's ICMP errors go through it too.
ICMP_QUOTE_MAX: Final = 548


def tcp_options_length(pkt: Packet) -> int:
    """Bytes of the TCP options `codec.tcp_options` writes: each option NOP-padded to 32 bits."""
    n = 0
    if pkt.mss is not None:
        n += 4
    if pkt.sackok:
        n += 4
    if pkt.wscale is not None:
        n += 4
    if pkt.sack:
        n += 4 + 8 * len(pkt.sack)
    return n


def ip_length(pkt: Packet) -> int:
    """The IPv4 total length of the packet on the wire: TCP with its options, UDP, ICMP (an error's
    quote cut at ICMP_QUOTE_MAX), any other protocol as `length` bytes after the IPv4 header."""
    proto = pkt.proto
    if proto == TCP:
        return 40 + tcp_options_length(pkt) + pkt.length
    if proto == UDP:
        return 28 + pkt.length
    if proto == ICMP:
        inner = pkt.inner
        return 28 + (pkt.length if inner is None else min(ip_length(inner), ICMP_QUOTE_MAX))
    return 20 + pkt.length
