"""A pcapng writer: packets with simulated timestamps in files that open cleanly in Wireshark/tshark
(`net.capture` taps emulated links into it).

One Section Header Block, one Interface Description Block per captured interface
(LINKTYPE_ETHERNET, `if_tsresol` = 9: nanosecond timestamps taken from simulated time), and one
Enhanced Packet Block per packet, with the packet's `notes` as `opt_comment` ("DNAT ...",
"conntrack INVALID ...", "no socket: RST"). Frames get made-up but stable MAC addresses derived
from interface names. Output is a pure function of what is written: no host, clock or version.

TCP is encoded exactly as `kplab.packet.codec.encode` does (a test holds them equal), but
faster: a zero-filled payload adds nothing to the checksum, so only headers are summed.
UDP and ICMP (with the quoted packet of an error) are encoded here too.
"""

from __future__ import annotations

import hashlib
import struct
from typing import BinaryIO

from kplab.packet import ICMP, ICMP_QUOTE_MAX, TCP, UDP, Packet
from kplab.packet.codec import checksum, tcp_options

LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_OPT_COMMENT = 1
_OPT_IF_NAME = 2
_OPT_IF_TSRESOL = 9
_OPT_SHB_USERAPPL = 4


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


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _encode_tcp(pkt: Packet) -> bytes:
    headers, payload = _tcp_parts(pkt)
    return headers + payload


def _tcp_parts(pkt: Packet) -> tuple[bytes, bytes]:
    """(IPv4 + TCP headers, payload) of a TCP packet, checksums filled in."""
    has_opts = pkt.mss is not None or pkt.sackok or pkt.wscale is not None or pkt.sack
    opts = tcp_options(pkt) if has_opts else b""
    header = (
        _TCP_HEADER.pack(pkt.sport, pkt.dport, pkt.seq, pkt.ack, (20 + len(opts)) << 2, pkt.flags, pkt.win)
        + opts
    )
    payload = pkt.data or bytes(pkt.length)
    seg_len = len(header) + len(payload)
    total = (pkt.src >> 16) + (pkt.src & 0xFFFF) + (pkt.dst >> 16) + (pkt.dst & 0xFFFF) + TCP + seg_len
    total += sum(struct.unpack(f"!{len(header) // 2}H", header))
    if pkt.data:
        data = pkt.data + b"\0" * (len(pkt.data) % 2)
        total += sum(struct.unpack(f"!{len(data) // 2}H", data))
    tcp = header[:16] + struct.pack("!H", _fold(total)) + header[18:]
    ip_header = struct.pack(
        "!BBHHHBBHII", 0x45, 0, 20 + seg_len, 0, 0x4000, pkt.ttl, TCP, 0, pkt.src, pkt.dst
    )
    ip_header = ip_header[:10] + struct.pack("!H", checksum(ip_header)) + ip_header[12:]
    return ip_header + tcp, payload


_TCP_HEADER = struct.Struct("!HHIIBBHxxxx")  # checksum and urgent pointer zero
_EPB_HEAD = struct.Struct("<IIIIIII")
_U32 = struct.Struct("<I")
_ETHERTYPE = struct.pack("!H", ETHERTYPE_IPV4)


def encode_ip(pkt: Packet) -> bytes:
    """IPv4 bytes of a TCP, UDP or ICMP packet, checksums filled in (payload zero-filled)."""
    if pkt.proto == TCP:
        return _encode_tcp(pkt)
    data = pkt.data or b"\0" * pkt.length
    if pkt.proto == UDP:
        udp = struct.pack("!HHHH", pkt.sport, pkt.dport, 8 + len(data), 0) + data
        pseudo = struct.pack("!IIBBH", pkt.src, pkt.dst, 0, UDP, len(udp))
        csum = checksum(pseudo + udp) or 0xFFFF
        return _ipv4(pkt, UDP, udp[:6] + struct.pack("!H", csum) + udp[8:])
    if pkt.proto == ICMP:
        body = encode_ip(pkt.inner)[:ICMP_QUOTE_MAX] if pkt.inner is not None else data
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
        headers, payload = _tcp_parts(pkt) if pkt.proto == TCP else (encode_ip(pkt), b"")
        frame_len = 14 + len(headers) + len(payload)
        pad = -frame_len % 4
        text = "; ".join(([comment] if comment else []) + pkt.notes) if comment or pkt.notes else ""
        options = (_option(_OPT_COMMENT, text.encode()) + _option(0, b"")) if text else b""
        total = 32 + frame_len + pad + len(options)
        hi, lo = time_ns >> 32, time_ns & 0xFFFFFFFF
        self.out.write(
            b"".join(
                (
                    _EPB_HEAD.pack(_EPB, total, if_id, hi, lo, frame_len, frame_len),
                    dst_mac,
                    src_mac,
                    _ETHERTYPE,
                    headers,
                    payload,
                    bytes(pad),
                    options,
                    _U32.pack(total),
                )
            )
        )
        self.packets += 1
