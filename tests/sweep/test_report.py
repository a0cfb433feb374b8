"""`kplab sweep --report`: one self-contained page, rendered in headless Chromium without errors."""

from __future__ import annotations

import re
from pathlib import Path

from .browser import CHROMIUM, render
from .helpers import kplab, write_grid

# Two numeric axes (a heatmap) and a variant axis: 8 cells x 2 seeds.
GRID = """\
scenario: builtin:small
axes:
  links.fabric.faults.slow_share: [0.003, 0.01]
  links.fabric.queue: [50, 100]
  variant: [as_is, drop_invalid]
seeds: 2
"""


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` as root installs it"
    grid = write_grid(tmp_path, GRID)
    page = tmp_path / "report.html"
    kplab("sweep", grid, "--workers", "2", "--report", page)
    text = page.read_text()
    # self-contained: nothing to fetch, nothing to run
    assert "<script" not in text and "<link" not in text and "<img" not in text
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    assert "kplab 0." in text and "links.fabric.queue: [50, 100]" in text  # version and grid
    shot = tmp_path / "report.png"
    seen = render(page, shot)
    assert seen.errors == [] and seen.failed_requests == [] and seen.images_unloaded == 0
    assert seen.title == "kplab sweep: builtin:small"
    assert seen.svg_count == 3  # P(reset) against each numeric axis, and the heatmap
    assert seen.table_rows == 8  # one per cell
    assert seen.body_width <= 1280  # nothing wider than the window
    assert shot.stat().st_size > 20_000  # a real picture (PNG) of a non-empty page
