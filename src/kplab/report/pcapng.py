"""A pcapng writer: captures of simulated links that open cleanly in Wireshark/tshark.

One Section Header Block, one Interface Description Block per captured interface
(LINKTYPE_ETHERNET, `if_tsresol` = 9: nanosecond timestamps taken from simulated time), and one
Enhanced Packet Block per packet, with the packet's `notes` as `opt_comment` ("DNAT ...",
"conntrack INVALID ...", "no socket: RST"). Frames get made-up but stable MAC addresses derived
from interface names. Output is a pure function of what is written: no host, clock or version.

TCP is encoded by `kplab.packet.codec`; UDP and ICMP (with the quoted packet of an error) here.
"""

from __future__ import annotations

import hashlib
import struct
from typing import BinaryIO

from kplab.net.link import Link
from kplab.packet import ICMP, TCP, UDP, Packet
from kplab.packet.codec import checksum
from kplab.packet.codec import encode as encode_tcp

LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_OPT_COMMENT = 1
_OPT_IF_NAME = 2
_OPT_IF_TSRESOL = 9
_OPT_SHB_USERAPPL = 4
_ICMP_QUOTE_MAX = 548  # RFC 1812: as much of the original datagram as fits in 576 bytes


def interface_mac(name: str) -> bytes:
    """A locally administered unicast MAC address, stable for an interface name."""
    return b"\x02" + hashlib.sha256(name.encode()).digest()[:5]


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _ipv4(pkt: Packet, proto: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBHII", 0x45, 0, 20 + len(payload), 0, 0x4000, pkt.ttl, proto, 0, pkt.src, pkt.dst
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def encode_ip(pkt: Packet) -> bytes:
    """IPv4 bytes of a TCP, UDP or ICMP packet, checksums filled in (payload zero-filled)."""
    if pkt.proto == TCP:
        return encode_tcp(pkt)
    data = pkt.data or b"\0" * pkt.length
    if pkt.proto == UDP:
        udp = struct.pack("!HHHH", pkt.sport, pkt.dport, 8 + len(data), 0) + data
        pseudo = struct.pack("!IIBBH", pkt.src, pkt.dst, 0, UDP, len(udp))
        csum = checksum(pseudo + udp) or 0xFFFF
        return _ipv4(pkt, UDP, udp[:6] + struct.pack("!H", csum) + udp[8:])
    if pkt.proto == ICMP:
        body = encode_ip(pkt.inner)[:_ICMP_QUOTE_MAX] if pkt.inner is not None else data
        icmp = struct.pack("!BBHI", pkt.icmp_type, pkt.icmp_code, 0, 0) + body
        icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
        return _ipv4(pkt, ICMP, icmp)
    return _ipv4(pkt, pkt.proto, data)


class PcapngWriter:
    """Writes blocks to `out` as they come. Timestamps are simulated nanoseconds."""

    def __init__(self, out: BinaryIO, application: str = "kplab") -> None:
        self.out = out
        self.interfaces: list[str] = []
        self.packets = 0
        options = _option(_OPT_SHB_USERAPPL, application.encode()) + _option(0, b"")
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + options
        out.write(_block(_SHB, body))

    def add_interface(self, name: str, snaplen: int = 262144) -> int:
        """Declare an interface (one IDB); returns its id for `write_packet`."""
        options = _option(_OPT_IF_NAME, name.encode()) + _option(_OPT_IF_TSRESOL, b"\x09") + _option(0, b"")
        self.out.write(_block(_IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + options))
        self.interfaces.append(name)
        return len(self.interfaces) - 1

    def write_packet(
        self, if_id: int, time_ns: int, pkt: Packet, src_mac: bytes, dst_mac: bytes, comment: str = ""
    ) -> None:
        """One Ethernet frame carrying `pkt`; `comment` and the packet's notes become opt_comment."""
        frame = dst_mac + src_mac + struct.pack("!H", ETHERTYPE_IPV4) + encode_ip(pkt)
        text = "; ".join(([comment] if comment else []) + pkt.notes)
        options = (_option(_OPT_COMMENT, text.encode()) + _option(0, b"")) if text else b""
        body = (
            struct.pack("<IIIII", if_id, time_ns >> 32, time_ns & 0xFFFFFFFF, len(frame), len(frame))
            + frame
            + b"\0" * (-len(frame) % 4)
            + options
        )
        self.out.write(_block(_EPB, body))
        self.packets += 1


def capture_link(writer: PcapngWriter, link: Link, end: str = "a", name: str | None = None) -> int:
    """Capture at one end of `link` as tcpdump would on that interface: packets it sends once the
    queue accepted them (so packets later lost on the wire appear), packets it receives when they
    arrive. Returns the interface id."""
    if end not in ("a", "b"):
        raise ValueError(f"link end must be 'a' or 'b', not {end!r}")
    ifname = name or f"{link.name}.{end}"
    if_id = writer.add_interface(ifname)
    here, there = (
        interface_mac(f"{link.name}.{end}"),
        interface_mac(f"{link.name}.{'b' if end == 'a' else 'a'}"),
    )
    outgoing, incoming = (link.a_to_b, link.b_to_a) if end == "a" else (link.b_to_a, link.a_to_b)
    sched = outgoing.sched

    def sent(pkt: Packet) -> None:
        writer.write_packet(if_id, sched.now_ns, pkt, here, there)

    def received(pkt: Packet) -> None:
        writer.write_packet(if_id, sched.now_ns, pkt, there, here)

    outgoing.on_transmit.append(sent)
    incoming.on_deliver.append(received)
    return if_id
