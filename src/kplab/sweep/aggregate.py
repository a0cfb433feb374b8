"""From runs to cells: how many runs reset (at least one server connection reset), the reset
probability and its 95% Wilson score interval."""

from __future__ import annotations

import math
from typing import Any

from kplab.sweep.grid import Cell
from kplab.sweep.runs import MEASURES, RunSpec

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (n > 0)."""
    p = k / n
    z2 = z * z
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if k == 0 else max(0.0, center - half)
    high = 1.0 if k == n else min(1.0, center + half)
    return low, high


def run_rows(
    cells: list[Cell], specs: list[RunSpec], results: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The `runs` of `kplab sweep -o json`, in the grid's order (cells, then seeds); runs that
    failed are left out."""
    rows = []
    for spec in specs:
        result = results.get(spec.key)
        if result is not None:
            row = {"params": dict(cells[spec.cell].params), "seed": spec.seed}
            row.update({k: result[k] for k in MEASURES})
            rows.append(row)
    return rows


def summarize(params: dict[str, Any], runs: int, resets: int) -> dict[str, Any]:
    low, high = wilson(resets, runs) if runs else (None, None)
    return {
        "params": params,
        "runs": runs,
        "resets": resets,
        "reset_probability": resets / runs if runs else None,
        "ci_low": low,
        "ci_high": high,
    }


def cell_rows(
    cells: list[Cell], specs: list[RunSpec], results: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The `cells` of `kplab sweep -o json`, one per cell in the grid's order."""
    counts = [[0, 0] for _ in cells]
    for spec in specs:
        result = results.get(spec.key)
        if result is not None:
            counts[spec.cell][0] += 1
            counts[spec.cell][1] += result["server_resets"] > 0
    return [summarize(dict(c.params), n, k) for c, (n, k) in zip(cells, counts, strict=True)]


def pooled(rows: list[dict[str, Any]], keep: list[str]) -> list[dict[str, Any]]:
    """Cells merged over every axis not in `keep` (runs and resets added), first-seen order."""
    merged: dict[tuple[str, ...], tuple[dict[str, Any], list[int]]] = {}
    for row in rows:
        params = {k: row["params"][k] for k in keep}
        ident = tuple(repr(params[k]) for k in keep)
        counts = merged.setdefault(ident, (params, [0, 0]))[1]
        counts[0] += row["runs"]
        counts[1] += row["resets"]
    return [summarize(params, n, k) for params, (n, k) in merged.values()]
