"""`kplab sweep` on Dask: runs per second with 1 and 2 local worker processes, and what the sweep
adds to each run (Dask scheduling, pickling, the cache's bookkeeping) against the run itself."""

from __future__ import annotations

import logging
import os
import time

from kplab.sweep.cache import Cache
from kplab.sweep.engine import run_all
from kplab.sweep.grid import cells, parse_grid
from kplab.sweep.runs import RunSpec, execute, run_key

TITLE = "sweep: runs per second on Dask (issue 13)"
REPEAT = 3
# builtin:small (~0.1-0.3 s of CPU per run): the short runs are the worst case for overhead.
GRID = """
scenario: builtin:small
axes:
  links.fabric.faults.slow_share: [0.003, 0.01]
  variant: [as_is, drop_invalid]
seeds: 8
"""


def specs() -> list[RunSpec]:
    grid = parse_grid(GRID, "<bench>", None)
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
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           worker_dashboard_address=":0", silence_logs=logging.CRITICAL)  # fmt: skip
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
    runs = specs()
    n = len(runs)
    load_before = os.getloadavg()[0]
    alone, alone_cpu = serial(runs)
    one, one_cpu = on_dask(runs, 1)
    two, two_cpu = on_dask(runs, 2)
    load_after = os.getloadavg()[0]
    speedup = one / two
    overhead_wall = (one - alone) / alone
    overhead = (one_cpu - alone_cpu) / alone_cpu
    per_run = alone_cpu / n * 1000
    met_speedup = "met" if speedup >= 1.7 else "not met"
    met_overhead = "met" if overhead < 0.05 else "not met"
    return f"""`python -m bench sweep`: {n} runs of `builtin:small` (slow_share x variant x 8 seeds), no
cache; best of {REPEAT} for each figure. The local cluster is started (and every worker has run
once) before timing. The run itself: the same {n} runs one after another in one process
(`kplab.sweep.runs.execute`, the repro code path). CPU s of a sweep: its worker processes and the
client's process (which also hosts the LocalCluster's scheduler).

Load average when measured: {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores. Other
work on a shared machine takes cores from the workers: the wall-clock figures (and the speed-up)
only mean something on an idle machine; the CPU figures hold either way.

| measure | result | target | |
|---|---:|---:|---|
| the runs themselves, in process | {alone:.2f} s wall, {alone_cpu:.2f} CPU s ({per_run:.0f} ms per run) | | |
| sweep, 1 worker | {one:.2f} s wall ({n / one:.2f} runs/s), {one_cpu:.2f} CPU s | | |
| sweep, 2 workers | {two:.2f} s wall ({n / two:.2f} runs/s), {two_cpu:.2f} CPU s | | |
| speed-up with 2 workers (wall) | {speedup:.2f}x | >= 1.7x | {met_speedup} |
| sweep overhead per run, CPU (1 worker vs in process) | {overhead * 100:.1f}% \
({(one_cpu - alone_cpu) / n * 1000:.1f} ms) | < 5% | {met_overhead} |
| same, wall clock | {overhead_wall * 100:.1f}% ({(one - alone) / n * 1000:.1f} ms) | | |
"""
