"""Shared helpers of the sweep tests: grids on disk, `kplab` in a child process, polling."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KPLAB = [sys.executable, "-c", "from kplab.cli import main; main()"]
BIN = Path(sys.executable).parent

# The small built-in scenario (a fraction of a second per run): 2 x 2 x 2 cells x 3 seeds.
GRID = """\
scenario: builtin:small
axes:
  links.fabric.faults.slow_share: [0.003, 0.01]
  kernel: ["5.4", "6.1"]
  variant: [as_is, drop_invalid]
seeds: 3
"""


def write_grid(directory: Path, text: str = GRID, name: str = "grid.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def kplab(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*KPLAB, *map(str, args)], capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def sweep_json(*args: str | Path) -> tuple[dict[str, Any], str]:
    """`kplab sweep ARGS -o json`: (the document, stderr)."""
    proc = kplab("sweep", *args, "-o", "json")
    return json.loads(proc.stdout), proc.stderr


def counts(stderr: str) -> dict[str, int]:
    """The closing line's counts: `kplab sweep: 24 runs: 20 executed, 4 cached, 0 failed (...)`."""
    line = next(x for x in stderr.splitlines() if x.startswith("kplab sweep: "))
    words = line.replace(",", "").replace(":", "").split()
    return {words[i + 1]: int(words[i]) for i in range(2, len(words) - 2) if words[i].isdigit()}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll until `condition()` (a state change, not a timing assertion); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def cached(out: Path) -> list[Path]:
    runs = out / "runs"
    return sorted(runs.glob("*.json")) if runs.is_dir() else []
