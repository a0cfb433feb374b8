"""`kplab sweep GRID.yaml`: a scenario over a grid of values, variants and seeds, on Dask."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kplab.cli.progress import count_progress
from kplab.errors import InputError
from kplab.sweep import output, report
from kplab.sweep.aggregate import cell_rows, run_rows
from kplab.sweep.cache import Cache
from kplab.sweep.engine import distinct, run_all
from kplab.sweep.grid import cells, load_grid
from kplab.sweep.runs import RunSpec, run_key


@click.command()
@click.argument("grid_ref", metavar="GRID.yaml")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep every run here (cache and resume), the runs as runs.parquet, the cells as cells.csv.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run on this Dask cluster (default: a local cluster of worker processes).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the local cluster (default: one per core).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a self-contained HTML report.",
)
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
def sweep(grid_ref: str, out_dir: Path | None, scheduler: str | None, workers: int | None,
          report_file: Path | None, fmt: str) -> None:  # fmt: skip
    """Run GRID.yaml (or builtin:seed-risk): every cell of its axes, every seed; the reset
    probability per cell with its 95% Wilson interval."""
    if scheduler is not None and workers is not None:
        raise InputError(
            "--workers:0: --workers sizes the local cluster; with --scheduler the cluster is yours"
        )
    started = time.perf_counter()
    grid = load_grid(grid_ref)
    grid_cells = cells(grid)
    specs = [
        RunSpec(i, c.scenario, c.variant, seed, run_key(c.scenario, c.variant, seed))
        for i, c in enumerate(grid_cells)
        for seed in grid.seeds
    ]
    cache = Cache(out_dir)
    with count_progress(len(distinct(specs)), sys.stderr.isatty()) as count:
        outcome = run_all(specs, cache, scheduler=scheduler, workers=workers, on_event=count)
    runs = run_rows(grid_cells, specs, outcome.results)
    cell_list = cell_rows(grid_cells, specs, outcome.results)
    axes = [a.name for a in grid.axes]
    if out_dir is not None:
        output.write_dir(out_dir, axes, runs, cell_list)
    if report_file is not None:
        report.write(report_file, grid, cell_list, len(runs))
    if fmt == "json":
        click.echo(output.as_json(runs, cell_list))
    elif fmt == "csv":
        click.echo(output.cells_csv(axes, cell_list), nl=False)
    else:
        output.print_table(f"{grid.scenario_ref}: P(reset) per cell", axes, cell_list)
    failed = len(outcome.errors)
    sys.stdout.flush()
    click.echo(
        f"kplab sweep: {len(distinct(specs))} runs: {outcome.executed} executed, {outcome.cached} cached, "
        f"{failed} failed ({time.perf_counter() - started:.1f} s)",
        err=True,
    )
    if failed:
        first = next(iter(outcome.errors.values()))
        click.echo(f"kplab: {failed} runs failed; the first: {first}", err=True)
        sys.exit(1)
