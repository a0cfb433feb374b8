"""`kplab sweep` on a LocalCluster: the JSON contract, runs equal to `kplab repro`/`kplab run`,
the files kept in --out, the cache, and resume after Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from kplab.sweep.aggregate import wilson
from kplab.sweep.grid import cells, load_grid
from kplab.sweep.runs import MEASURES

from .helpers import GRID, KPLAB, cached, counts, kplab, sweep_json, wait_for, write_grid

FIX = {"as_is": "none", "drop_invalid": "drop-invalid", "be_liberal": "be-liberal"}
AXES = ["links.fabric.faults.slow_share", "kernel", "variant"]


def test_json_contract(local_sweep: tuple[Path, dict[str, Any]]) -> None:
    _, doc = local_sweep
    assert set(doc) == {"runs", "cells"}
    assert len(doc["runs"]) == 24 and len(doc["cells"]) == 8
    for run in doc["runs"]:
        assert list(run) == ["params", "seed", *MEASURES]
        assert list(run["params"]) == AXES
    assert [r["seed"] for r in doc["runs"][:3]] == [1, 2, 3]
    for cell in doc["cells"]:
        assert list(cell) == ["params", "runs", "resets", "reset_probability", "ci_low", "ci_high"]
        mine = [r for r in doc["runs"] if r["params"] == cell["params"]]
        assert cell["runs"] == len(mine) == 3
        assert cell["resets"] == sum(r["server_resets"] > 0 for r in mine)
        assert cell["reset_probability"] == cell["resets"] / 3
        assert (cell["ci_low"], cell["ci_high"]) == wilson(cell["resets"], 3)
    # the grid makes a difference somewhere, and the drop rule never resets
    assert any(c["resets"] for c in doc["cells"])
    assert not any(c["resets"] for c in doc["cells"] if c["params"]["variant"] == "drop_invalid")


def test_runs_equal_kplab_repro_and_run(local_sweep: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    grid_file, doc = local_sweep
    grid_cells = cells(load_grid(str(grid_file)))
    # a cell that resets and one that does not, both variants, two seeds
    picks = [r for r in doc["runs"] if r["seed"] in (1, 2) and r["params"]["kernel"] == "5.4"]
    picks = [r for r in picks if r["params"]["links.fabric.faults.slow_share"] == 0.01]
    assert len(picks) == 4
    for run in picks:
        cell = next(c for c in grid_cells if c.params == run["params"])
        scenario = tmp_path / "cell.yaml"
        scenario.write_text(cell.yaml)
        variant = run["params"]["variant"]
        proc = kplab("repro", "-f", scenario, "--fix", FIX[variant], "--seed", str(run["seed"]), "-o", "json")
        repro = json.loads(proc.stdout)["variants"][variant]
        assert {k: repro[k] for k in MEASURES} == {k: run[k] for k in MEASURES}
        if variant == "as_is":  # the scenario as written: what `kplab run` runs
            plain = json.loads(kplab("run", scenario, "--seed", str(run["seed"]), "-o", "json").stdout)
            assert plain["packets"] == run["packets"] and plain["sim_seconds"] == run["sim_seconds"]
            assert plain["outcomes"].get("reset", 0) == run["reset"]
            assert plain["outcomes"].get("completed", 0) == run["completed"]


def test_out_dir_keeps_runs_as_parquet_and_cells_as_csv(local_sweep: tuple[Path, dict[str, Any]]) -> None:
    grid_file, doc = local_sweep
    out = grid_file.parent / "out"
    table = pq.read_table(out / "runs.parquet").to_pylist()
    assert len(table) == len(doc["runs"])
    for row, run in zip(table, doc["runs"], strict=True):
        assert {a: row[a] for a in AXES} == run["params"] and row["seed"] == run["seed"]
        assert dict(row["invalid_by_reason"]) == run["invalid_by_reason"]
        assert {k: row[k] for k in MEASURES if k != "invalid_by_reason"} == {
            k: run[k] for k in MEASURES if k != "invalid_by_reason"
        }
    with (out / "cells.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(doc["cells"])
    for row, cell in zip(rows, doc["cells"], strict=True):
        assert row["variant"] == cell["params"]["variant"] and int(row["resets"]) == cell["resets"]
        assert float(row["ci_high"]) == cell["ci_high"]
    assert len(cached(out)) == 24


def test_cache_second_sweep_runs_nothing_and_more_seeds_run_only_new(
    local_sweep: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    grid_file, doc = local_sweep
    # A copy of the session's cache: this test adds runs, which no other test may see (in any order).
    out = tmp_path / "out"
    shutil.copytree(grid_file.parent / "out", out)
    before = {p.name: p.stat().st_mtime_ns for p in cached(out)}
    again, stderr = sweep_json(grid_file, "--out", out)
    assert counts(stderr) == {"runs": 24, "executed": 0, "cached": 24, "failed": 0}
    assert again == doc
    assert {p.name: p.stat().st_mtime_ns for p in cached(out)} == before
    # one more seed and one more value: only the new runs
    bigger = write_grid(tmp_path, GRID.replace("seeds: 3", "seeds: 4").replace('"6.1"]', '"6.1", host]'))
    more, stderr = sweep_json(bigger, "--out", out, "--workers", "2")
    assert counts(stderr) == {"runs": 48, "executed": 24, "cached": 24, "failed": 0}
    old = {(json.dumps(r["params"]), r["seed"]): r for r in doc["runs"]}
    for run in more["runs"]:
        if (json.dumps(run["params"]), run["seed"]) in old:
            assert run == old[(json.dumps(run["params"]), run["seed"])]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_exits_130_keeps_what_is_done_and_resumes(
    local_sweep: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    grid = write_grid(tmp_path, GRID.replace("seeds: 3", "seeds: 4"))  # 32 runs
    out = tmp_path / "out"
    command = [*KPLAB, "sweep", str(grid), "--out", str(out), "--workers", "2", "-o", "json"]
    # its own process group, as a shell's foreground job: Ctrl-C reaches the workers too
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        wait_for(lambda: len(cached(out)) >= 2 or proc.poll() is not None, "the first runs")
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert stdout == "" and stderr == "kplab: interrupted\n"  # one line: no tracebacks from the workers
    wait_for(lambda: not _group_alive(proc.pid), "the worker processes to end")
    done = len(cached(out))
    assert 2 <= done < 32
    assert not list((out / "runs").glob(".*.tmp"))  # only whole results
    resumed, stderr = sweep_json(grid, "--out", out, "--workers", "2")
    assert counts(stderr) == {"runs": 32, "executed": 32 - done, "cached": done, "failed": 0}
    # the same numbers as a sweep that was never interrupted (seeds 1-3 of the session's sweep)
    assert [r for r in resumed["runs"] if r["seed"] <= 3] == local_sweep[1]["runs"]
