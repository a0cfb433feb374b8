"""Same seed -> identical event trace and wire; a different seed -> a different run."""

from __future__ import annotations

from kplab.apps import DownloadWorkload, FileServer
from kplab.net import Link
from kplab.scenario.schema import Faults
from kplab.sim import MS, SECOND, Scheduler, derive_rng
from kplab.tcp import TcpConfig, TcpHost, TcpStack

from .pair import CLIENT, SERVER


def _run(seed: int) -> tuple[list[tuple[int, str]], list[str], dict[str, int]]:
    trace: list[tuple[int, str]] = []
    sched = Scheduler(derive_rng(seed, "sched"), trace)
    faults = Faults(loss=0.03, duplicate=0.01, slow_share=0.1, slow_delay_ns=2 * MS, jitter_ns=50_000)
    link = Link(sched, "l", derive_rng(seed, "link"), 50_000_000, MS, 50, faults=faults)
    client = TcpHost(sched, TcpStack(TcpConfig(), derive_rng(seed, "c")), link.send_from_a)
    server = TcpHost(sched, TcpStack(TcpConfig(), derive_rng(seed, "s")), link.send_from_b)
    link.attach(client.receive, server.receive)
    wire: list[str] = []
    link.a_to_b.on_transmit.append(lambda p: wire.append(f"{sched.now_ns} {p.describe()}"))
    link.b_to_a.on_transmit.append(lambda p: wire.append(f"{sched.now_ns} {p.describe()}"))
    FileServer(server, SERVER, 80, 300_000)
    work = DownloadWorkload(
        client, CLIENT, SERVER, 80, derive_rng(seed, "w"), 300_000, parallel=4, repeat=2, spread_ns=20 * MS
    )
    sched.run(until_ns=300 * SECOND)
    assert work.outcomes() == {"completed": 8}
    return trace, wire, {**client.counters, **{"s" + k: v for k, v in server.counters.items()}}


def test_same_seed_identical_trace_wire_and_counters() -> None:
    first, second = _run(42), _run(42)
    assert first == second
    assert len(first[0]) > 1000


def test_other_seed_differs() -> None:
    assert _run(42)[1] != _run(43)[1]
