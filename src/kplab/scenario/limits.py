"""How big a scenario kplab agrees to run, and how a scenario raises that (`limits:`).

The emulator simulates every packet (~100,000 per CPU second) and the lab makes a namespace per
host: a scenario with 10^5 pods, 10^9 parallel connections or terabytes to download would run
until killed. Such a scenario is refused at load time with the limit and the key that raises it:

    limits: {hosts: 1000, connections: 100000, transfer: 10GB, duration: 1h}
"""

from __future__ import annotations

from dataclasses import dataclass

from kplab.scenario.schema import Scenario


@dataclass(frozen=True, slots=True)
class Limits:
    hosts: int = 1000  # nodes + pods + external hosts
    connections: int = 100_000  # clients x parallel x downloads
    transfer_bytes: int = 10 * 10**9  # connections x file_size
    duration_ns: int = 3600 * 10**9  # simulated (emulator) or wall-clock (lab) time


def problems(s: Scenario, limits: Limits) -> list[tuple[str, str]]:
    """(scenario key, what is too big) for every limit `s` exceeds."""
    out = []
    w = s.workload
    hosts = len(s.nodes) + len(s.pods) + len(s.externals)
    if hosts > limits.hosts:
        out.append(("pods", _over(f"{hosts} hosts (nodes, pods and externals)", limits.hosts, "hosts")))
    clients = len(s.hosts_matching(w.client_selector))
    connections = clients * w.parallel * w.downloads
    if connections > limits.connections:
        what = (
            f"{connections} connections ({clients} clients x parallel {w.parallel} x downloads {w.downloads})"
        )
        out.append(("workload", _over(what, limits.connections, "connections")))
    transfer = connections * w.file_bytes
    if transfer > limits.transfer_bytes:
        what = f"{transfer} bytes to download ({connections} connections x file_size {w.file_bytes})"
        out.append(("workload", _over(what, limits.transfer_bytes, "transfer")))
    if s.duration_ns > limits.duration_ns:
        what = f"a duration of {s.duration_ns / 1e9:g} s"
        out.append(("duration", _over(what, limits.duration_ns, "duration", " ns")))
    return out


def _over(what: str, limit: int, key: str, unit: str = "") -> str:
    return (
        f"{what} is more than kplab runs by default ({limit}{unit}); "
        f"raise `limits: {{{key}: ...}}` in the scenario"
    )
