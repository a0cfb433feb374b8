"""pcapng captures of simulated links: valid for tshark (checksums, comments, ns timestamps),
and byte-identical for the same seed."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

from kplab.apps import DownloadWorkload, FileServer
from kplab.net import Link
from kplab.net.capture import capture_link
from kplab.packet import ICMP, TCP, UDP, Packet, codec, ip, ip_length, tcp_options_length
from kplab.report.pcapng import PcapngWriter, encode_ip, interface_mac
from kplab.scenario.schema import Faults
from kplab.sim import MS, SECOND, Scheduler, derive_rng
from kplab.tcp import TcpConfig, TcpHost, TcpStack

CLIENT, SERVER = ip("10.0.0.1"), ip("10.0.0.2")


def _capture_run(seed: int, out: io.BufferedIOBase | io.BytesIO) -> PcapngWriter:
    """A lossy download plus a stray TCP segment (answered by a no-socket RST), UDP and ICMP."""
    sched = Scheduler(derive_rng(seed, "sched"))
    faults = Faults(loss=0.02, duplicate=0.01, slow_share=0.05, slow_delay_ns=2 * MS)
    link = Link(sched, "veth0", derive_rng(seed, "link"), 100_000_000, 1 * MS, faults=faults)
    client = TcpHost(sched, TcpStack(TcpConfig(), derive_rng(seed, "c")), link.send_from_a)
    server = TcpHost(sched, TcpStack(TcpConfig(), derive_rng(seed, "s")), link.send_from_b)
    link.attach(client.receive, server.receive)
    writer = PcapngWriter(out)
    capture_link(writer, link, "a")
    capture_link(writer, link, "b")
    FileServer(server, SERVER, 80, 200_000)
    DownloadWorkload(client, CLIENT, SERVER, 80, derive_rng(seed, "w"), 200_000, parallel=2, spread_ns=5 * MS)
    quoted = Packet(CLIENT, SERVER, UDP, 40000, 9999, length=30)
    sched.call_at(1 * MS, link.send_from_a, Packet(CLIENT, SERVER, UDP, 40000, 9999, length=30))
    sched.call_at(
        2 * MS, link.send_from_b, Packet(SERVER, CLIENT, ICMP, icmp_type=3, icmp_code=3, inner=quoted)
    )
    stray = Packet(CLIENT, SERVER, TCP, 1234, 81, flags=0x18, seq=5, ack=77, win=100, length=10)
    sched.call_at(3 * MS, link.send_from_a, stray)
    sched.run(until_ns=120 * SECOND)
    return writer


def _tshark(*args: str) -> subprocess.CompletedProcess[str]:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is not installed (Debian package tshark; `make debs` installs it)"
    return subprocess.run([tshark, *args], capture_output=True, text=True, timeout=120, check=False)


def _stderr_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("Running as user")]


def test_tshark_reads_capture_without_warnings_or_errors(tmp_path: Path) -> None:
    path = tmp_path / "run.pcapng"
    with path.open("wb") as f:
        writer = _capture_run(11, f)
    plain = _tshark("-r", str(path))
    assert plain.returncode == 0 and not _stderr_problems(plain.stderr), plain.stderr
    assert len(plain.stdout.splitlines()) == writer.packets
    checks = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]
    expert = _tshark("-r", str(path), "-q", "-z", "expert,error", *checks)
    assert expert.returncode == 0 and not _stderr_problems(expert.stderr), expert.stderr
    assert "Errors" not in expert.stdout and "Malformed" not in expert.stdout, expert.stdout
    fields = _tshark(
        "-r", str(path), "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name",
        "-e", "frame.comment", "-e", "tcp.flags.reset", "-e", "icmp.type", "-e", "eth.src",
    )  # fmt: skip
    rows = [line.split("|") for line in fields.stdout.splitlines()]
    assert {r[0] for r in rows} == {"veth0.a", "veth0.b"}
    rst_rows = [r for r in rows if r[1] == "no socket: RST"]
    assert rst_rows and all(r[2] == "1" for r in rst_rows)
    assert any(r[3] == "3" for r in rows)
    macs = {r[4] for r in rows}
    assert macs == {":".join(f"{b:02x}" for b in interface_mac(n)) for n in ("veth0.a", "veth0.b")}


def test_same_seed_gives_identical_bytes_other_seed_differs() -> None:
    first, second, other = io.BytesIO(), io.BytesIO(), io.BytesIO()
    _capture_run(5, first)
    _capture_run(5, second)
    _capture_run(6, other)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue() != other.getvalue()


def test_block_structure_and_nanosecond_timestamps() -> None:
    out = io.BytesIO()
    writer = PcapngWriter(out)
    if_id = writer.add_interface("eth0")
    pkt = Packet(CLIENT, SERVER, TCP, 1, 2, flags=0x02, seq=1, mss=1460, notes=["hello"])
    writer.write_packet(if_id, 5 * SECOND + 7, pkt, interface_mac("a"), interface_mac("b"))
    data = out.getvalue()
    types = []
    offset = 0
    while offset < len(data):
        block_type, length = struct.unpack_from("<II", data, offset)
        assert struct.unpack_from("<I", data, offset + length - 4)[0] == length
        types.append(block_type)
        if block_type == 6:
            _if, hi, lo, caplen, _orig = struct.unpack_from("<IIIII", data, offset + 8)
            assert (hi << 32 | lo) == 5 * SECOND + 7
            assert caplen == 14 + 20 + 24  # Ethernet + IPv4 + TCP with MSS
            assert b"hello" in data[offset : offset + length]
        offset += length
    assert types == [0x0A0D0D0A, 1, 6]


u32 = st.integers(0, 2**32 - 1)
u16 = st.integers(0, 2**16 - 1)


@given(
    src=u32, dst=u32, sport=u16, dport=u16, flags=st.integers(0, 255), seq=u32, ack=u32, win=u16,
    length=st.integers(0, 1500), data=st.binary(max_size=41), mss=st.none() | u16,
    wscale=st.none() | st.integers(0, 14), sackok=st.booleans(),
    sack=st.lists(st.tuples(u32, u32), max_size=4),
)  # fmt: skip
def test_fast_tcp_encoding_is_the_codec_encoding(
    src: int, dst: int, sport: int, dport: int, flags: int, seq: int, ack: int, win: int, length: int,
    data: bytes, mss: int | None, wscale: int | None, sackok: bool, sack: list[tuple[int, int]],
) -> None:  # fmt: skip
    pkt = Packet(src, dst, TCP, sport, dport, flags, seq, ack, win, len(data) or length, mss=mss,
                 wscale=wscale, sackok=sackok, sack=tuple(sack), data=data)  # fmt: skip
    assume(len(codec.tcp_options(pkt)) <= 40)  # what a TCP header can carry
    assert encode_ip(pkt) == codec.encode(pkt)
    # The one length the links serialise and conntrack accounts is the encoded one.
    assert len(codec.tcp_options(pkt)) == tcp_options_length(pkt)
    assert ip_length(pkt) == len(encode_ip(pkt)) == struct.unpack("!H", encode_ip(pkt)[2:4])[0]


@given(src=u32, dst=u32, sport=u16, dport=u16, length=st.integers(0, 1500), icmp=st.booleans())
def test_udp_and_icmp_checksums_verify(
    src: int, dst: int, sport: int, dport: int, length: int, icmp: bool
) -> None:
    udp = Packet(src, dst, UDP, sport, dport, length=length)
    pkt = Packet(dst, src, ICMP, icmp_type=3, icmp_code=3, inner=udp) if icmp else udp
    raw = encode_ip(pkt)
    assert ip_length(pkt) == len(raw) == struct.unpack("!H", raw[2:4])[0]
    assert codec.checksum(raw[:20]) == 0
    if icmp:
        assert codec.checksum(raw[20:]) == 0 and raw[28:] == encode_ip(udp)[:548]  # quoted, capped
    else:
        pseudo = struct.pack("!IIBBH", src, dst, 0, UDP, len(raw) - 20)
        assert codec.checksum(pseudo + raw[20:]) == 0
