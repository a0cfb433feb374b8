"""`kplab sweep --scheduler` on a real Dask cluster: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 (random ports), started here and always killed at the end."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from kplab.sweep.grid import cells, load_grid
from kplab.sweep.runs import MEASURES

from .helpers import BIN, KPLAB, cached, kplab, sweep_json, wait_for


@dataclass
class DaskCluster:
    address: str
    workers: dict[str, subprocess.Popen[bytes]]  # name -> the `dask worker` process
    addresses: dict[str, str]  # name -> the worker's address


def _start(stack: ExitStack, log: Path, *args: str | Path) -> subprocess.Popen[bytes]:
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen([str(BIN / "dask"), *map(str, args)], stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    stack.callback(stop)
    return proc


def _address(file: Path) -> str | None:
    try:
        return str(json.loads(file.read_text())["address"])
    except (OSError, ValueError, KeyError):
        return None  # not written (whole) yet


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    with ExitStack() as stack:
        info = tmp_path / "scheduler.json"
        scheduler = _start(stack, tmp_path / "scheduler.log", "scheduler", "--host", "127.0.0.1",
                           "--port", "0", "--no-dashboard", "--scheduler-file", info)  # fmt: skip
        wait_for(lambda: _address(info) is not None or scheduler.poll() is not None, "the scheduler")
        address = _address(info)
        assert address is not None, (tmp_path / "scheduler.log").read_text()
        workers = {
            name: _start(
                stack,
                tmp_path / f"{name}.log",
                "worker",
                address,
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
            )
            for name in ("w1", "w2")
        }
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            names = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
        yield DaskCluster(address, workers, names)


def test_sweep_on_a_dask_cluster_equals_local_cluster_and_repro(
    dask_cluster: DaskCluster, local_sweep: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    grid_file, local = local_sweep
    doc, stderr = sweep_json(grid_file, "--scheduler", dask_cluster.address)
    assert "24 executed" in stderr
    assert doc == local
    # and to `kplab repro` for one run of each variant
    grid_cells = cells(load_grid(str(grid_file)))
    for run in (doc["runs"][4], doc["runs"][-1]):
        cell = next(c for c in grid_cells if c.params == run["params"])
        (tmp_path / "cell.yaml").write_text(cell.yaml)
        fix = {"as_is": "none", "drop_invalid": "drop-invalid"}[cell.variant]
        proc = kplab(
            "repro", "-f", tmp_path / "cell.yaml", "--fix", fix, "--seed", str(run["seed"]), "-o", "json"
        )
        repro = json.loads(proc.stdout)["variants"][cell.variant]
        assert {k: repro[k] for k in MEASURES} == {k: run[k] for k in MEASURES}


def test_a_worker_killed_mid_sweep_loses_no_run(
    dask_cluster: DaskCluster, local_sweep: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """w1 dies after finishing a run. The survivor w2 is stopped (SIGSTOP) from before the sweep
    until w1 is dead, so the order does not depend on the machine's speed: the sweep cannot end
    before the kill (w2 holds runs), every run cached before the kill is w1's, and w2 does the rest."""
    grid_file, local = local_sweep
    out = tmp_path / "out"
    victim, survivor = dask_cluster.addresses["w1"], dask_cluster.addresses["w2"]

    def workers_of(paths: list[Path]) -> list[str]:
        return [json.loads(p.read_text())["worker"] for p in paths]

    command = [
        *KPLAB,
        "sweep",
        str(grid_file),
        "--scheduler",
        dask_cluster.address,
        "--out",
        str(out),
        "-o",
        "json",
    ]
    w2 = dask_cluster.workers["w2"]
    w2.send_signal(signal.SIGSTOP)
    sweep = None
    try:
        sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: victim in workers_of(cached(out)) or sweep.poll() is not None, "a run by w1")
        dask_cluster.workers["w1"].send_signal(signal.SIGKILL)
        dask_cluster.workers["w1"].wait()
        before = set(cached(out))
        w2.send_signal(signal.SIGCONT)
        stdout, stderr = sweep.communicate(timeout=300)
    finally:
        w2.send_signal(signal.SIGCONT)
        if sweep is not None and sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, stderr
    assert 0 < len(before) < 24 and set(workers_of(sorted(before))) == {victim}  # killed mid-sweep
    # The rest, on the survivor (a result w1 handed over before it died may be stored just after).
    after = [p for p in cached(out) if p not in before]
    assert survivor in workers_of(after) and set(workers_of(after)) <= {victim, survivor}
    assert len(cached(out)) == 24
    assert json.loads(stdout) == local
