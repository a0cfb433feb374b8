"""The runs of a sweep on Dask: a `distributed.LocalCluster` of worker processes, or an existing
cluster by its scheduler's address. Finished runs go to the cache as they arrive, so Ctrl-C or a
crash keeps them. A worker that dies costs a retry: the scheduler gives its runs to another
worker (Dask's own bookkeeping; `RETRIES` more for a run that raised).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kplab.errors import InputError
from kplab.scenario.schema import Scenario
from kplab.sweep.cache import Cache
from kplab.sweep.runs import RunSpec, execute

if TYPE_CHECKING:
    from distributed import Client

RETRIES = 2
Event = Callable[[str], None]  # "executed" | "cached" | "failed", once per distinct run


@dataclass
class Outcome:
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # run key -> measures
    errors: dict[str, str] = field(default_factory=dict)  # run key -> what went wrong
    executed: int = 0
    cached: int = 0


def task(scenario: Scenario, variant: str, seed: int) -> tuple[dict[str, Any], str]:
    """What a worker runs: the measures, and the worker's address (kept in the cache record)."""
    from distributed import get_worker

    try:
        worker = str(get_worker().address)
    except ValueError:
        worker = ""
    return execute(scenario, variant, seed), worker


def default_workers() -> int:
    return os.cpu_count() or 1


@contextmanager
def connect(scheduler: str | None, workers: int | None) -> Iterator[Client]:
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot reach the Dask scheduler: {exc}") from None
        with client:
            yield client
        return
    with _workers_ignore_ctrl_c():
        cluster = local_cluster(workers or default_workers())
    with cluster, Client(cluster) as client:
        yield client


def local_cluster(workers: int) -> Any:
    """A `distributed.LocalCluster` of `workers` single-threaded worker processes."""
    import dask
    from distributed import LocalCluster

    # Dask's statistical profiler samples every worker thread every 10 ms: most of the sweep's own
    # CPU per run when runs are short (bench/sweep.py: 55 -> 18 ms without it), and nothing a sweep
    # reads.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # never a fixed port another sweep may hold
            worker_dashboard_address=":0",
            # Dask's own shutdown chatter (a heartbeat racing the scheduler's close) is not the
            # user's business; a run that fails is reported by the sweep itself.
            silence_logs=logging.CRITICAL,
        )


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Worker processes start with SIGINT ignored (they inherit it): Ctrl-C in a terminal reaches
    the whole process group, and it is the sweep that stops its cluster, not each worker on its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def distinct(specs: list[RunSpec]) -> dict[str, RunSpec]:
    """One spec per run key (two cells may describe the same run)."""
    runs: dict[str, RunSpec] = {}
    for spec in specs:
        runs.setdefault(spec.key, spec)
    return runs


def run_all(
    specs: list[RunSpec], cache: Cache, *, scheduler: str | None, workers: int | None, on_event: Event
) -> Outcome:
    outcome = Outcome()
    todo = []
    for key, spec in distinct(specs).items():
        hit = cache.get(key)
        if hit is None:
            todo.append(spec)
            continue
        outcome.results[key] = hit
        outcome.cached += 1
        on_event("cached")
    if not todo:
        return outcome  # nothing new: no cluster needed
    from distributed import as_completed

    with connect(scheduler, workers) as client:
        futures = {
            client.submit(task, s.scenario, s.variant, s.seed, key=f"kplab-run-{s.key}", retries=RETRIES): s
            for s in todo
        }
        try:
            done = as_completed(futures)
            for future in done:
                spec = futures[future]
                if future.status in ("lost", "pending"):  # its worker died holding the result: Dask reruns it
                    done.add(future)
                    continue
                if future.status != "finished":
                    error = future.exception() if future.status == "error" else future.status
                    outcome.errors[spec.key] = f"{type(error).__name__}: {error}"
                    on_event("failed")
                    continue
                result, worker = future.result()
                cache.put(spec.key, result, {"variant": spec.variant, "seed": spec.seed, "worker": worker})
                outcome.results[spec.key] = result
                outcome.executed += 1
                on_event("executed")
        except BaseException:  # Ctrl-C (kplab.cli's Interrupted, or KeyboardInterrupt): stop the rest
            client.cancel(list(futures))
            raise
    return outcome
