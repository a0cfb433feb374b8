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
