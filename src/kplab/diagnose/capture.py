"""TCP/IPv4 segments from a pcap or pcapng file (read with dpkt), with interface names and comments.

pcapng sections may hold several interfaces (the emulator writes one per node interface, named
`node-a:eth0`, and puts conntrack verdicts in packet comments; `tcpdump -i any` writes one).
dpkt's pcapng Reader keeps only the first interface, so blocks are walked here and interface
blocks decoded with dpkt's InterfaceDescriptionBlock; classic pcap goes through dpkt.pcap.Reader.
Link types: Ethernet (with 802.1Q tags), Linux cooked v1/v2, raw IPv4. Frames that are not
TCP/IPv4 (ARP, IPv6, UDP, later IP fragments) are skipped; a broken file is bad input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import dpkt

from kplab.errors import InputError

PCAPNG_SHB, PCAPNG_IDB, PCAPNG_EPB, PCAPNG_SPB = 0x0A0D0D0A, 1, 6, 3
PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
OPT_COMMENT, OPT_IF_NAME, OPT_IF_TSRESOL = 1, 2, 9
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_IP_OFFSET = {1: None, 113: 16, 276: 20, 101: 0, 228: 0, 12: 0, 14: 0}  # None = parse Ethernet


@dataclass(slots=True)
class Segment:
    """One captured TCP segment (a frame; the same packet on two interfaces is two segments)."""

    file: str
    frame: int  # 1-based, as Wireshark numbers frames
    ts_ns: int
    iface: str
    src: int
    sport: int
    dst: int
    dport: int
    seq: int
    ack: int
    flags: int
    length: int  # payload bytes, from the IP total length (snaplen does not shorten it)
    comment: str = ""

    @property
    def end(self) -> int:
        return (
            self.seq + self.length + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)
        ) % 2**32


@dataclass(slots=True)
class Capture:
    file: str
    format: str
    segments: list[Segment] = field(default_factory=list)
    frames: int = 0
    interfaces: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Iface:
    name: str
    linktype: int
    units_per_s: int = 1_000_000
    power_of_two: int | None = None

    def ns(self, ticks: int) -> int:
        if self.power_of_two is not None:
            return (ticks * 1_000_000_000) >> self.power_of_two
        return ticks * 1_000_000_000 // self.units_per_s


def read(data: bytes, file: str) -> Capture:
    try:
        if data[:4] == struct.pack("<I", PCAPNG_SHB):
            return _read_pcapng(data, file)
        if data[:4] in PCAP_MAGICS:
            return _read_pcap(data, file)
    except (struct.error, ValueError, IndexError, dpkt.dpkt.Error) as exc:
        raise InputError(f"{file}: malformed capture: {exc}") from None
    raise InputError(f"{file}: not a pcap or pcapng file (magic {data[:4].hex() or 'missing'})")


def _read_pcap(data: bytes, file: str) -> Capture:
    """Classic pcap: the file header through dpkt, records walked here (exact nanoseconds)."""
    little = data[:4] in (PCAP_MAGICS[0], PCAP_MAGICS[2])
    header = (dpkt.pcap.LEFileHdr if little else dpkt.pcap.FileHdr)(data[:24])
    nano = data[:4] in PCAP_MAGICS[2:]
    order = "<" if little else ">"
    cap = Capture(file, "pcap", interfaces=[""])
    pos = 24
    while pos < len(data):
        if len(data) - pos < 16:
            raise ValueError(f"truncated record header at offset {pos}")
        sec, frac, caplen, _ = struct.unpack_from(order + "IIII", data, pos)
        if pos + 16 + caplen > len(data):
            raise ValueError(f"record at offset {pos} is cut short")
        cap.frames += 1
        ts_ns = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        _add(cap, data[pos + 16 : pos + 16 + caplen], header.linktype, ts_ns, "", "")
        pos += 16 + caplen
    return cap


def _read_pcapng(data: bytes, file: str) -> Capture:
    cap = Capture(file, "pcapng")
    pos, order, ifaces = 0, "<", list[_Iface]()
    while pos < len(data):
        if len(data) - pos < 12:
            raise ValueError(f"truncated block at offset {pos}")
        btype = struct.unpack_from(order + "I", data, pos)[0]
        if btype == PCAPNG_SHB:
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack_from(order + "I", data, pos + 4)[0]
        if blen < 12 or blen % 4 or pos + blen > len(data):
            raise ValueError(f"block at offset {pos} has a bad length {blen}")
        body = data[pos + 8 : pos + blen - 4]
        if btype == PCAPNG_IDB:
            ifaces.append(_interface(data[pos : pos + blen], order, len(ifaces), file))
            cap.interfaces.append(ifaces[-1].name)
        elif btype == PCAPNG_EPB:
            _enhanced_packet(cap, body, order, ifaces, pos)
        pos += blen
    return cap


def _interface(block: bytes, order: str, index: int, file: str) -> _Iface:
    idb = (
        dpkt.pcapng.InterfaceDescriptionBlockLE if order == "<" else dpkt.pcapng.InterfaceDescriptionBlock
    )(block)
    iface = _Iface(f"{file}#if{index}", idb.linktype)
    for opt in idb.opts:
        if opt.code == OPT_IF_NAME:
            iface.name = bytes(opt.data).rstrip(b"\0").decode("utf-8", "replace")
        elif opt.code == OPT_IF_TSRESOL and len(opt.data) >= 1:
            value = opt.data[0]
            if value & 0x80:
                iface.power_of_two = value & 0x7F
            else:
                iface.units_per_s = 10 ** min(value, 18)
    return iface


def _enhanced_packet(cap: Capture, body: bytes, order: str, ifaces: list[_Iface], pos: int) -> None:
    if_id, ts_high, ts_low, caplen, _ = struct.unpack_from(order + "IIIII", body, 0)
    if if_id >= len(ifaces) or 20 + caplen > len(body):
        raise ValueError(f"packet block at offset {pos}: bad interface or capture length")
    cap.frames += 1
    frame = body[20 : 20 + caplen]
    comment = _comment(body, 20 + caplen + (-caplen % 4), order)
    iface = ifaces[if_id]
    _add(cap, frame, iface.linktype, iface.ns((ts_high << 32) | ts_low), iface.name, comment)


def _comment(body: bytes, pos: int, order: str) -> str:
    comments = []
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, pos)
        if code == 0:
            break
        if code == OPT_COMMENT:
            comments.append(body[pos + 4 : pos + 4 + length].decode("utf-8", "replace"))
        pos += 4 + length + (-length % 4)
    return "; ".join(comments)


def _ip_offset(frame: bytes, linktype: int) -> int | None:
    if linktype not in _IP_OFFSET:
        return None
    offset = _IP_OFFSET[linktype]
    if offset is not None:
        proto_at = {113: 14, 276: 0}.get(linktype)
        if proto_at is not None and frame[proto_at : proto_at + 2] != b"\x08\x00":
            return None
        return offset
    pos = 12
    while frame[pos : pos + 2] in (b"\x81\x00", b"\x88\xa8"):
        pos += 4
    return pos + 2 if frame[pos : pos + 2] == b"\x08\x00" else None


def _add(cap: Capture, frame: bytes, linktype: int, ts_ns: int, iface: str, comment: str) -> None:
    if linktype == 276 and len(frame) >= 8:  # Linux cooked v2 (`tcpdump -i any`) names the ifindex
        iface = f"{iface or cap.file}/ifindex {struct.unpack_from('!I', frame, 4)[0]}"
    off = _ip_offset(frame, linktype)
    if off is None or len(frame) < off + 20 or frame[off] >> 4 != 4 or frame[off + 9] != 6:
        return
    ihl = (frame[off] & 0x0F) * 4
    total, frag = struct.unpack_from("!H2xH", frame, off + 2)
    tcp = off + ihl
    if frag & 0x1FFF or ihl < 20 or len(frame) < tcp + 20:
        return
    sport, dport, seq, ack, doff_flags = struct.unpack_from("!HHIIH", frame, tcp)
    src, dst = struct.unpack_from("!II", frame, off + 12)
    length = max(0, total - ihl - (doff_flags >> 12) * 4)
    cap.segments.append(
        Segment(
            cap.file,
            cap.frames,
            ts_ns,
            iface,
            src,
            sport,
            dst,
            dport,
            seq,
            ack,
            doff_flags & 0xFF,
            length,
            comment,
        )
    )
