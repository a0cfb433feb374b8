"""The emulator against ns-3: bench/cluster.py's downloads (kube-proxy rules, conntrack and NAT on both
nodes) next to the same topology in ns-3 without NAT (bench/ns3/cluster.cc, built against Debian's
libns3-dev), packets a pod sent per CPU second, compiled and pure, side by side in one run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench.child import call
from bench.cluster import FLOWS, TOTAL_BYTES

TITLE = "emulator vs ns-3 (issue 11)"
SOURCE = Path(__file__).resolve().parent / "ns3" / "cluster.cc"
BINARY = Path(__file__).resolve().parent.parent / ".venv" / "ns3-cluster"
NS3_LIBS = ("core", "network", "internet", "point-to-point", "applications")


def build_ns3() -> Path:
    """Compile bench/ns3/cluster.cc (once per source change) against the installed ns-3."""
    if BINARY.exists() and BINARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return BINARY
    if (
        shutil.which("pkg-config") is None
        or subprocess.run(["pkg-config", "--exists", "ns3-core"]).returncode
    ):
        raise RuntimeError("ns-3 is not installed (make bench installs Debian's libns3-dev as root)")
    cflags = subprocess.run(
        ["pkg-config", "--cflags", *(f"ns3-{lib}" for lib in NS3_LIBS)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # linked by name: the .pc files also name libgsl's -dev symlinks, which the runtime package lacks
    libs = [f"-lns3-{lib}" for lib in NS3_LIBS]
    subprocess.run(["g++", "-O2", "-std=c++17", "-o", str(BINARY), str(SOURCE), *cflags, *libs], check=True)
    return BINARY


def ns3_run(binary: Path, flows: int) -> dict[str, float]:
    out = subprocess.run(
        [str(binary), str(flows), str(TOTAL_BYTES)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def ns3_version() -> str:
    done = subprocess.run(
        ["pkg-config", "--modversion", "ns3-core"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "?"


def _kplab(flows: int, pure: bool) -> tuple[int, float]:
    """(packets, CPU s), the faster of two runs, in a child process."""
    (packets, _wall, cpu, _sim, outcomes), _ = call("bench.cluster", "measure", flows, 2, pure=pure)
    assert outcomes == {"completed": flows}, outcomes
    return int(packets), float(cpu)


def run() -> str:
    binary = build_ns3()
    rows = []
    for flows in FLOWS:
        packets, cpu = _kplab(flows, pure=False)
        pure_packets, pure_cpu = _kplab(flows, pure=True)
        assert pure_packets == packets
        ns3 = min((ns3_run(binary, flows) for _ in range(2)), key=lambda r: r["cpu_seconds"])
        assert ns3["completed"] == flows, ns3
        rows.append((flows, packets, packets / cpu, packets / pure_cpu, int(ns3["packets"]),
                     ns3["packets"] / ns3["cpu_seconds"]))  # fmt: skip
    lines = [
        f"kplab: bench/cluster.py's scenario (two nodes, kube-proxy `current` rules, conntrack and NAT on "
        f"both nodes, {TOTAL_BYTES // 1_000_000} MB downloaded through a ClusterIP Service by N parallel "
        f"connections, 10 Gbit/s links, veths 20 us, fabric 50 us, 1000-packet queues, MSS 1460, CUBIC). "
        f"ns-3 {ns3_version()} (Debian's build): bench/ns3/cluster.cc, the same pods, veths, nodes and "
        "fabric (a router standing for the switch), rates, delays, queues, MSS, receive buffer, initial "
        "window, delayed ACK, RTO and CUBIC, bulk sends from the two servers, no NAT (ns-3 has none). A "
        "packet is one packet a pod sent; rates are per CPU second of the simulating process, the faster "
        "of two runs.",
        "",
        "| downloads | kplab packets | kplab compiled /CPU s | kplab pure /CPU s | compiled / pure "
        "| ns-3 packets | ns-3 /CPU s | kplab compiled / ns-3 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for flows, packets, native, pure, ns3_packets, ns3_rate in rows:
        lines.append(f"| {flows} | {packets:,} | {native:,.0f} | {pure:,.0f} | {native / pure:.2f}x | "
                     f"{ns3_packets:,} | {ns3_rate:,.0f} | {native / ns3_rate:.2f}x |")  # fmt: skip
    by_flows = {r[0]: r for r in rows}
    ratio10 = by_flows[10][2] / by_flows[10][5]
    slowdown = by_flows[1][2] / by_flows[100][2]
    e2e = by_flows[10][2] / by_flows[10][3]

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines += [
        "",
        f"- kplab >= 2.0x ns-3 at 10 downloads: **{mark(ratio10 >= 2.0)}** ({ratio10:.2f}x).",
        f"- at most 1.5x slower per packet at 100 downloads than at 1: **{mark(slowdown <= 1.5)}** "
        f"({slowdown:.2f}x).",
        f"- end to end, compiled >= 2x pure (10 downloads): **{mark(e2e >= 2.0)}** ({e2e:.2f}x).",
    ]
    return "\n".join(lines)
