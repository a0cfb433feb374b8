"""A progress bar of simulated time, one row per run, on stderr (only when stdout is a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

Tick = Callable[[str, int, int], None]  # (row, now_ns, until_ns)


@contextmanager
def sim_progress(rows: tuple[str, ...], total_ns: int) -> Iterator[Tick]:
    """Yields `tick(row, now_ns, until_ns)`; the bar disappears when the block ends."""
    with Progress(TextColumn("{task.description:<14}"), BarColumn(), TextColumn("{task.fields[t]}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:  # fmt: skip
        tasks = {row: bar.add_task(row, total=total_ns, t="") for row in rows}

        def tick(row: str, now: int, until: int) -> None:
            bar.update(tasks[row], completed=now, t=f"{now / 1e9:.2f}/{until / 1e9:.0f} s simulated")

        yield tick


Count = Callable[[str], None]  # ("executed" | "cached" | "failed")


@contextmanager
def count_progress(total: int, show: bool) -> Iterator[Count]:
    """A bar of runs done out of `total`, counting executed, cached and failed ones (on stderr,
    when `show`); yields `count(kind)`."""
    counts = {"executed": 0, "cached": 0, "failed": 0}
    if not show:
        yield lambda kind: counts.__setitem__(kind, counts[kind] + 1)
        return
    with Progress(TextColumn("runs"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:  # fmt: skip
        task = bar.add_task("runs", total=total, counts="")

        def count(kind: str) -> None:
            counts[kind] += 1
            text = f"executed {counts['executed']}, cached {counts['cached']}, failed {counts['failed']}"
            bar.update(task, advance=1, counts=text)

        yield count
