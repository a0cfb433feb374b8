"""A sweep's results out: JSON, CSV and a table on stdout; runs as Parquet and cells as CSV in DIR."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kplab.sweep.runs import MEASURES

CELL_KEYS = ("runs", "resets", "reset_probability", "ci_low", "ci_high")
RUNS_FILE = "runs.parquet"
CELLS_FILE = "cells.csv"


def as_json(runs: list[dict[str, Any]], cells: list[dict[str, Any]]) -> str:
    return json.dumps({"runs": runs, "cells": cells}, indent=2)


def cells_csv(axes: list[str], cells: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*axes, *CELL_KEYS])
    for c in cells:
        writer.writerow([*(c["params"][a] for a in axes), *("" if c[k] is None else c[k] for k in CELL_KEYS)])
    return out.getvalue()


def _column(values: list[Any]) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # one axis with numbers and strings
        return pa.array([str(v) for v in values])


def write_parquet(path: Path, axes: list[str], runs: list[dict[str, Any]]) -> None:
    """One row per run: one column per axis (named as in the grid), the seed, the measures
    (`invalid_by_reason` as a map of reason to count)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {a: _column([r["params"][a] for r in runs]) for a in axes}
    columns["seed"] = pa.array([r["seed"] for r in runs], pa.int64())
    for key in MEASURES:
        if key == "invalid_by_reason":
            reasons = [list(r[key].items()) for r in runs]
            columns[key] = pa.array(reasons, pa.map_(pa.string(), pa.int64()))
        elif key == "sim_seconds":
            columns[key] = pa.array([r[key] for r in runs], pa.float64())
        else:
            columns[key] = pa.array([r[key] for r in runs], pa.int64())
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(columns), tmp)
    tmp.replace(path)


def write_dir(
    directory: Path, axes: list[str], runs: list[dict[str, Any]], cells: list[dict[str, Any]]
) -> None:
    write_parquet(directory / RUNS_FILE, axes, runs)
    (directory / CELLS_FILE).write_text(cells_csv(axes, cells))


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def print_table(title: str, axes: list[str], cells: list[dict[str, Any]]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=title)
    for a in axes:
        table.add_column(a)
    for label in ("runs", "reset runs", "P(reset)", "95% interval"):
        table.add_column(label, justify="right")
    for c in cells:
        p = c["reset_probability"]
        shown = _fmt(p) if not p else f"[bold red]{_fmt(p)}[/]"
        interval = f"{_fmt(c['ci_low'])} - {_fmt(c['ci_high'])}"
        table.add_row(*(str(c["params"][a]) for a in axes), str(c["runs"]), str(c["resets"]), shown, interval)
    console.print(table)
