"""The packet: an IPv4 header plus one L4 header, as a small mutable record.

Mutable on purpose: NAT rewrites addresses and ports in place as the packet crosses a node,
as the kernel rewrites the skb. Take `copy()` before keeping a packet (captures, duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntFlag
from typing import Final

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


@dataclass(slots=True)
class Packet:
    """One IPv4 packet. Ports are 0 for ICMP; TCP fields are 0 for other protocols.

    `length` is the L4 payload length in bytes; the payload itself is not carried (kplab
    models sequence space, not content), except `data` when a test or the lab needs bytes.
    For ICMP errors, `inner` is the quoted packet (the kernel matches it to its flow).
    """

    src: int
    dst: int
    proto: int = TCP
    sport: int = 0
    dport: int = 0
    flags: int = 0
    seq: int = 0
    ack: int = 0
    win: int = 0
    length: int = 0
    mss: int | None = None
    wscale: int | None = None
    sackok: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    icmp_type: int = 0
    icmp_code: int = 0
    inner: Packet | None = None
    ttl: int = 64
    uid: int = 0
    notes: list[str] = field(default_factory=list)
    data: bytes = b""

    def copy(self) -> Packet:
        return replace(self, notes=list(self.notes))

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
