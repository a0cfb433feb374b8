"""`kplab sweep` on Dask: runs per second with 1 and 2 local worker processes, and what the sweep
adds to each run (Dask scheduling, pickling, the cache's bookkeeping) against the run itself."""

from __future__ import annotations

import os
import time

from kplab.sweep.cache import Cache
from kplab.sweep.engine import local_cluster, run_all
from kplab.sweep.grid import cells, parse_grid
from kplab.sweep.runs import RunSpec, execute, run_key

TITLE = "sweep: runs per second on Dask (issue 13)"
REPEAT = 3
# builtin:seed's runs (what builtin:seed-risk runs), and builtin:small's much shorter ones: the
# worst case for the sweep's overhead per run.
GRIDS = {
    "builtin:seed (as seed-risk runs it)": """
scenario: builtin:seed
axes:
  kernel: ["5.4", "6.1"]
  variant: [as_is, drop_invalid]
seeds: 4
""",
    "builtin:small": """
scenario: builtin:small
axes:
  links.fabric.faults.slow_share: [0.003, 0.01]
  variant: [as_is, drop_invalid]
seeds: 8
""",
}


def specs(text: str) -> list[RunSpec]:
    grid = parse_grid(text, "<bench>", None)
    return [RunSpec(i, c.scenario, c.variant, s, run_key(c.scenario, c.variant, s))
            for i, c in enumerate(cells(grid)) for s in grid.seeds]  # fmt: skip


def serial(runs: list[RunSpec]) -> tuple[float, float]:
    """(wall s, CPU s) of the runs themselves, one after another in this process (best of REPEAT)."""
    execute(runs[0].scenario, runs[0].variant, runs[0].seed)  # imports and caches warm
    wall = cpu = float("inf")
    for _ in range(REPEAT):
        started, cpu0 = time.perf_counter(), time.process_time()
        for r in runs:
            execute(r.scenario, r.variant, r.seed)
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu0)
    return wall, cpu


def on_dask(runs: list[RunSpec], workers: int) -> tuple[float, float]:
    """(wall s, CPU s) of `run_all` (no cache) on a running LocalCluster of `workers` processes,
    best of REPEAT. CPU: the worker processes' and this one's (client and scheduler), so it counts
    everything the sweep adds whatever else the machine runs. The cluster's start is not counted,
    the client's connection is."""
    from distributed import Client

    cluster = local_cluster(workers)
    with cluster, Client(cluster) as client:
        # every worker imports kplab and runs once before timing
        warm = [client.submit(execute, runs[0].scenario, runs[0].variant, runs[0].seed, pure=False,
                              workers=[w]) for w in client.scheduler_info()["workers"]]  # fmt: skip
        client.gather(warm)

        def cpu_now() -> float:
            return time.process_time() + float(sum(client.run(time.process_time).values()))

        wall = cpu = float("inf")
        for _ in range(REPEAT):
            started, cpu0 = time.perf_counter(), cpu_now()
            outcome = run_all(runs, Cache(None), scheduler=cluster.scheduler_address, workers=None,
                              on_event=lambda _kind: None)  # fmt: skip
            wall = min(wall, time.perf_counter() - started)
            cpu = min(cpu, cpu_now() - cpu0)
            assert outcome.executed == len(runs) and not outcome.errors
    return wall, cpu


def run() -> str:
    load_before = os.getloadavg()[0]
    rows = []
    for name, text in GRIDS.items():
        runs = specs(text)
        n = len(runs)
        alone, alone_cpu = serial(runs)
        one, one_cpu = on_dask(runs, 1)
        two, _ = on_dask(runs, 2)
        speedup = one / two
        overhead = (one_cpu - alone_cpu) / alone_cpu
        rows.append(
            f"| {name} | {n} | {alone_cpu / n * 1000:.0f} ms | {n / one:.2f} | {n / two:.2f} | "
            f"{speedup:.2f}x ({'met' if speedup >= 1.7 else 'not met'}) | "
            f"{(one_cpu - alone_cpu) / n * 1000:.1f} ms = {overhead * 100:.1f}% "
            f"({'met' if overhead < 0.05 else 'not met'}) | {(one - alone) / n * 1000:.0f} ms |"
        )
    load_after = os.getloadavg()[0]
    table = "\n".join(rows)
    return f"""`python -m bench sweep`: the same runs in one process one after another (the run itself:
`kplab.sweep.runs.execute`, the repro code path) and through `run_all` (no cache) on a running
LocalCluster of 1 and 2 worker processes (started, every worker warmed by one run, before timing;
the client's connection is counted). Best of {REPEAT} for each figure. The sweep's CPU is its
worker processes' and the client's process (which hosts the LocalCluster's scheduler too), so the
overhead counts everything the sweep adds, whatever else runs on the machine.

Load average when measured: {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores. Other
work on this shared machine takes cores from the workers, so the wall-clock figures (runs per
second, the speed-up) only mean something on an idle machine. The CPU overhead is inflated by
load too: Dask's processes spend CPU per second of wall time (heartbeats, event loops), so runs
stretched by other work cost more of it.

Targets: speed-up >= 1.7x with 2 workers; overhead < 5% of the run.

| runs of | runs | CPU per run | runs/s, 1 worker | runs/s, 2 workers | speed-up | sweep overhead \
per run (CPU) | overhead per run (wall) |
|---|---:|---:|---:|---:|---:|---:|---:|
{table}
"""
