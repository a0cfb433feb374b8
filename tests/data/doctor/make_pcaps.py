"""Regenerate the emulator captures of the doctor tests (from the repo root):

    .venv/bin/python tests/data/doctor/make_pcaps.py

Runs `kplab repro`'s seed scenario (seed 1) for the as_is and control variants with captures, and
keeps small, real excerpts of them: the blocks of a few connections around an event, with packet
data cut to 96 bytes (as `tcpdump -s 96` would; the IP length still says how long the packet was).
- `emu-as_is-<node>.pcapng`: the first two connections whose server was reset (handshake, then
  20 ms before the escaped segment to 60 ms after it).
- `emu-control-<node>.pcapng`: two connections of the control run (pod IPs, no NAT), the same span.
Blocks are copied unchanged apart from the cut, so the interface blocks and comments are the
emulator's own.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

from kplab.diagnose.capture import read
from kplab.diagnose.flows import find_escapes
from kplab.packet import parse_cidr
from kplab.repro.run import run_variants
from kplab.scenario.load import builtin

HERE = Path(__file__).parent
SNAP = 96
NODES = ("node-a", "node-b")


def excerpt(src: Path, dst: Path, ports: set[int], start_ns: int, end_ns: int) -> None:
    """Copy SHB/IDBs and the EPBs of `ports` that are handshakes or fall in [start, end)."""
    data = src.read_bytes()
    cap = read(data, src.name)
    keep = {s.frame for s in cap.segments if (s.sport in ports or s.dport in ports)
            and (start_ns <= s.ts_ns < end_ns or s.flags & 0x02)}  # fmt: skip
    out, pos, frame = bytearray(), 0, 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        block = data[pos : pos + blen]
        if btype == 6:
            frame += 1
            if frame in keep:
                out += _cut(block)
        else:
            out += block
        pos += blen
    dst.write_bytes(bytes(out))


def _cut(block: bytes) -> bytes:
    if_id, hi, lo, caplen, origlen = struct.unpack_from("<IIIII", block, 8)
    options = block[28 + caplen + (-caplen % 4) : -4]
    new = min(caplen, SNAP)
    body = (
        struct.pack("<IIIII", if_id, hi, lo, new, origlen)
        + block[28 : 28 + new]
        + b"\0" * (-new % 4)
        + options
    )
    return struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_variants(builtin(), ("as_is", "control"), pcap_dir=Path(tmp))
        segs = [
            s for n in NODES for s in read((Path(tmp) / "as_is" / f"{n}.pcapng").read_bytes(), n).segments
        ]
        escapes = [e for e in find_escapes(segs, [parse_cidr("192.168.0.0/16")], [parse_cidr("10.0.0.0/16")])
                   if e.outcome == "reset"][:2]  # fmt: skip
        ports = {e.flow.client[1] for e in escapes}
        start = min(e.escaped.ts_ns for e in escapes) - 20_000_000
        end = max(e.escaped.ts_ns for e in escapes) + 60_000_000
        for n in NODES:
            excerpt(Path(tmp) / "as_is" / f"{n}.pcapng", HERE / f"emu-as_is-{n}.pcapng", ports, start, end)
        control = read((Path(tmp) / "control" / "node-a.pcapng").read_bytes(), "control")
        client_ports = sorted({s.sport for s in control.segments if s.flags == 0x02})[:2]
        for n in NODES:
            target = HERE / f"emu-control-{n}.pcapng"
            excerpt(Path(tmp) / "control" / f"{n}.pcapng", target, set(client_ports), start, end)


if __name__ == "__main__":
    main()
