"""escaped-reverse-nat and challenge-ack-survived from captures: the emulator's own pcapng (excerpts
committed by make_pcaps.py, and a fresh run of the seed repro) and hand-built classic pcaps."""

from __future__ import annotations

import io
from pathlib import Path

import dpkt
import pytest

from kplab.diagnose import Severity
from kplab.diagnose.capture import ACK, RST, read
from kplab.packet import ip
from kplab.repro.run import run_variants
from kplab.scenario.load import builtin

from .helpers import DATA, report

CIDRS = {"service_cidrs": ["192.168.0.0/16"], "pod_cidrs": ["10.0.0.0/16"]}


def emu(variant: str) -> list[str]:
    return [str(DATA / f"emu-{variant}-node-{n}.pcapng") for n in ("a", "b")]


def test_seed_as_is_excerpt_shows_the_escape_the_rst_and_the_server_reset() -> None:
    r = report(pcaps=emu("as_is"), **CIDRS)
    assert r.ids() == ["escaped-reverse-nat"]
    found = r.get("escaped-reverse-nat")
    assert found is not None and found.severity is Severity.CRITICAL
    conns = found.data["connections"]
    assert len(conns) == 2 and found.data["servers_reset"] == 2
    for c in conns:
        assert c["vip"] == "192.168.0.2:80" and c["backend"].startswith("10.0.1.")
        assert c["seq_match"] and c["rst_exact"] is True and c["server"] == "reset"
        assert c["rst_ts_ns"] > c["escaped_ts_ns"]
    # The packets quoted are the capture's own: the emulator's comments say what conntrack did.
    assert any("escaped:" in e and "conntrack INVALID" in e for e in found.evidence)
    assert any("client RST:" in e and "[R]" in e for e in found.evidence)


def test_seed_control_excerpt_has_nothing() -> None:
    assert report(pcaps=emu("control"), **CIDRS).ids() == []


def test_escaped_rst_is_the_clients_answer_to_the_escaped_segment() -> None:
    segs = [s for p in emu("as_is") for s in read(Path(p).read_bytes(), p).segments]
    found = report(pcaps=emu("as_is"), **CIDRS).get("escaped-reverse-nat")
    assert found is not None
    for c in found.data["connections"]:
        file, frame = c["escaped_frame"].rsplit("#", 1)
        escaped = next(s for s in segs if s.file == file and s.frame == int(frame))
        file, frame = c["rst_frame"].rsplit("#", 1)
        rst = next(s for s in segs if s.file == file and s.frame == int(frame))
        assert (
            rst.flags & RST
            and rst.seq == escaped.ack
            and (rst.dst, rst.dport) == (escaped.src, escaped.sport)
        )


def test_fresh_seed_repro_as_is_and_control(tmp_path: Path) -> None:
    """The full as_is/control captures of `kplab repro` (seed 1): one escaped-reverse-nat connection per
    server connection the emulator counted as reset, and nothing in the control run."""
    result = run_variants(builtin(), ("as_is", "control"), pcap_dir=tmp_path)
    as_is = [str(tmp_path / "as_is" / f"node-{n}.pcapng") for n in ("a", "b")]
    found = report(pcaps=as_is, **CIDRS).get("escaped-reverse-nat")
    assert found is not None
    assert found.data["servers_reset"] == result["variants"]["as_is"]["server_resets"] > 0
    control = [str(tmp_path / "control" / f"node-{n}.pcapng") for n in ("a", "b")]
    assert report(pcaps=control, **CIDRS).ids() == []


# Hand-built classic pcaps: client 10.0.0.2:40000 -> VIP 192.168.0.2:80, backend 10.0.1.2:80.
C, V, B = ip("10.0.0.2"), ip("192.168.0.2"), ip("10.0.1.2")


def frame(
    src: int, sport: int, dst: int, dport: int, seq: int, ack: int, flags: int, length: int = 0
) -> bytes:
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, data=b"\0" * length)
    pkt = dpkt.ip.IP(src=src.to_bytes(4, "big"), dst=dst.to_bytes(4, "big"), p=6, data=tcp)
    pkt.len = 20 + len(bytes(tcp))
    return bytes(dpkt.ethernet.Ethernet(type=0x0800, data=pkt))


def write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> str:
    buf = io.BytesIO()
    writer = dpkt.pcap.Writer(buf)
    for ts, data in packets:
        writer.writepkt(data, ts=ts)
    path.write_bytes(buf.getvalue())
    return str(path)


def flow_with_escape(bogus_ack: bool, server_after: str) -> list[tuple[float, bytes]]:
    """A download from the VIP; at t=1.0 a backend segment arrives un-NATed; the client RSTs it."""
    pkts = [(0.0, frame(C, 40000, V, 80, 999, 0, 0x02)), (0.001, frame(V, 80, C, 40000, 4999, 1000, 0x12)),
            (0.002, frame(C, 40000, V, 80, 1000, 5000, ACK))]  # fmt: skip
    pkts += [(0.01 * i, frame(V, 80, C, 40000, 5000 + 1000 * i, 1000, ACK, 1000)) for i in range(1, 50)]
    ack = 1000 + 70_000 if bogus_ack else 1000
    pkts += [
        (1.0, frame(B, 80, C, 40000, 6000, ack, ACK, 1000)),
        (1.0001, frame(C, 40000, B, 80, ack, 0, RST)),
    ]
    if server_after == "reset":
        pkts += [
            (1.002, frame(C, 40000, V, 80, 1000, 55000, ACK)),
            (1.003, frame(V, 80, C, 40000, 55000, 0, RST)),
        ]
    elif server_after == "lives":
        pkts += [
            (1.0 + 0.05 * i, frame(V, 80, C, 40000, 55000 + 1000 * i, 1000, ACK, 1000)) for i in range(1, 9)
        ]
    return sorted(pkts)


@pytest.mark.parametrize(
    ("bogus_ack", "after", "ids", "outcome"),
    [(False, "reset", ["escaped-reverse-nat"], "reset"),
     (True, "lives", ["escaped-reverse-nat", "challenge-ack-survived"], "survived"),
     (False, "nothing", ["escaped-reverse-nat"], "unknown")],
)  # fmt: skip
def test_outcome_follows_the_rst(
    tmp_path: Path, bogus_ack: bool, after: str, ids: list[str], outcome: str
) -> None:
    path = write_pcap(tmp_path / "c.pcap", flow_with_escape(bogus_ack, after))
    r = report(pcaps=[path], service_cidrs=["192.168.0.0/16"], pod_cidrs=["10.0.0.0/16"])
    assert r.ids() == ids
    found = r.get("escaped-reverse-nat")
    assert found is not None
    (conn,) = found.data["connections"]
    assert conn["server"] == outcome and conn["rst_exact"] is (not bogus_ack)


def test_direct_pod_traffic_is_not_an_escape(tmp_path: Path) -> None:
    pkts = [(0.0, frame(C, 40001, B, 80, 1, 0, 0x02)), (0.001, frame(B, 80, C, 40001, 9, 2, 0x12)),
            (0.002, frame(B, 80, C, 40001, 10, 2, ACK, 100)),
            (0.003, frame(C, 40001, B, 80, 2, 0, RST))]  # fmt: skip
    path = write_pcap(tmp_path / "d.pcap", pkts)
    assert report(pcaps=[path], service_cidrs=["192.168.0.0/16"]).ids() == []


def test_committed_real_kernel_capture() -> None:
    """tests/data/doctor/lab-reset-client.pcap: tcpdump in a lab client namespace (lab_reset.py) while
    a lost conntrack entry let the server's segment escape un-NATed."""
    found = report(pcaps=[str(DATA / "lab-reset-client.pcap")], service_cidrs=["192.168.0.0/24"],
                   pod_cidrs=["10.0.1.0/24"]).get("escaped-reverse-nat")  # fmt: skip
    assert found is not None
    (conn,) = found.data["connections"]
    assert (conn["vip"], conn["backend"], conn["rst_exact"], conn["server"]) == (
        "192.168.0.2:80", "10.0.1.2:80", True, "reset")  # fmt: skip
    assert any(e.strip().startswith("escaped: 2026-") or "escaped: 20" in e for e in found.evidence)


def test_committed_real_kernel_challenge_ack_capture() -> None:
    """tests/data/doctor/lab-challenge-client.pcap (lab_reset.run_challenge): the escaped segment ACKed
    1000 bytes the client never sent; the RST was inexact and the server answered a challenge ACK."""
    r = report(pcaps=[str(DATA / "lab-challenge-client.pcap")], service_cidrs=["192.168.0.0/24"],
               pod_cidrs=["10.0.1.0/24"])  # fmt: skip
    assert r.ids() == ["escaped-reverse-nat", "challenge-ack-survived"]
    found = r.get("challenge-ack-survived")
    assert found is not None
    (conn,) = found.data["connections"]
    assert conn["rst_exact"] is False and conn["server"] == "survived"
