"""Packet <-> IPv4+TCP bytes with correct checksums (for the real-kernel lab and pcap files).

Only what kplab needs: IPv4 without options, TCP with MSS, window scale, SACK-permitted and SACK
options (NOP-padded to 32 bits), zero-filled payload of `length` bytes unless `data` is set.
"""

from __future__ import annotations

import struct

from kplab.packet.model import TCP, UDP, Packet


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_options(pkt: Packet) -> bytes:
    opts = b""
    if pkt.mss is not None:
        opts += struct.pack("!BBH", 2, 4, pkt.mss)
    if pkt.sackok:
        opts += b"\x01\x01\x04\x02"
    if pkt.wscale is not None:
        opts += struct.pack("!BBBB", 1, 3, 3, pkt.wscale)
    if pkt.sack:
        blocks = b"".join(struct.pack("!II", left, right) for left, right in pkt.sack)
        opts += b"\x01\x01" + struct.pack("!BB", 5, 2 + len(blocks)) + blocks
    return opts + b"\x01" * (-len(opts) % 4)


def _ip_header(pkt: Packet, payload_len: int, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBHII", 0x45, 0, 20 + payload_len, ident, 0x4000, pkt.ttl, pkt.proto, 0, pkt.src, pkt.dst
    )
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:]


def encode_udp(pkt: Packet, ident: int = 0) -> bytes:
    """IPv4 + UDP bytes (zero-filled payload of `length` bytes), both checksums filled in."""
    payload = pkt.data or b"\0" * pkt.length
    size = 8 + len(payload)
    datagram = struct.pack("!HHHH", pkt.sport, pkt.dport, size, 0) + payload
    csum = checksum(struct.pack("!IIBBH", pkt.src, pkt.dst, 0, UDP, size) + datagram) or 0xFFFF
    datagram = datagram[:6] + struct.pack("!H", csum) + datagram[8:]
    return _ip_header(pkt, size, ident) + datagram


def encode(pkt: Packet, ident: int = 0) -> bytes:
    """IPv4 + TCP (or UDP) bytes, every checksum filled in."""
    if pkt.proto == UDP:
        return encode_udp(pkt, ident)
    if pkt.proto != TCP:
        raise ValueError("encode handles TCP and UDP only")
    opts = tcp_options(pkt)
    payload = pkt.data or b"\0" * pkt.length
    offset = (20 + len(opts)) // 4
    header = struct.pack(
        "!HHIIBBHHH", pkt.sport, pkt.dport, pkt.seq, pkt.ack, offset << 4, pkt.flags, pkt.win, 0, 0
    )
    segment = header + opts + payload
    pseudo = struct.pack("!IIBBH", pkt.src, pkt.dst, 0, TCP, len(segment))
    csum = checksum(pseudo + segment)
    segment = segment[:16] + struct.pack("!H", csum) + segment[18:]
    return _ip_header(pkt, len(segment), ident) + segment


def _parse_options(pkt: Packet, opts: bytes) -> None:
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        size = opts[i + 1]
        body = opts[i + 2 : i + size]
        if kind == 2 and size == 4:
            pkt.mss = struct.unpack("!H", body)[0]
        elif kind == 3 and size == 3:
            pkt.wscale = body[0]
        elif kind == 4 and size == 2:
            pkt.sackok = True
        elif kind == 5 and (size - 2) % 8 == 0:
            pkt.sack = tuple(struct.unpack("!II", body[j : j + 8]) for j in range(0, size - 2, 8))
        i += size


def decode(data: bytes) -> Packet:
    """IPv4 bytes -> Packet (TCP and UDP parsed; other protocols keep addresses only).

    Also records `tos` in `notes` as `tos=N` (the kernel lab marks packets' ctstate there).
    """
    if len(data) < 20 or data[0] >> 4 != 4:
        raise ValueError("not an IPv4 packet")
    ihl = (data[0] & 0x0F) * 4
    total = struct.unpack("!H", data[2:4])[0]
    proto = data[9]
    src, dst = struct.unpack("!II", data[12:20])
    pkt = Packet(src=src, dst=dst, proto=proto, ttl=data[8], notes=[f"tos={data[1]}"])
    if proto == UDP:
        pkt.sport, pkt.dport, size = struct.unpack("!HHH", data[ihl : ihl + 6])
        pkt.length = size - 8
        return pkt
    if proto != TCP:
        return pkt
    tcp = data[ihl:total]
    sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", tcp[:16])
    doff = (off >> 4) * 4
    pkt.sport, pkt.dport, pkt.seq, pkt.ack, pkt.flags, pkt.win = sport, dport, seq, ack, flags, win
    _parse_options(pkt, tcp[20:doff])
    pkt.length = len(tcp) - doff
    return pkt


def tcp_checksum_ok(data: bytes) -> bool:
    ihl = (data[0] & 0x0F) * 4
    total = struct.unpack("!H", data[2:4])[0]
    segment = data[ihl:total]
    pseudo = data[12:20] + struct.pack("!BBH", 0, TCP, len(segment))
    return checksum(pseudo + segment) == 0
