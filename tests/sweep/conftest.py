"""The sweep every test compares with: the small grid on a LocalCluster of two worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import sweep_json, write_grid


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """(the grid file, `kplab sweep GRID --workers 2 -o json`), cache in the grid's folder/out."""
    directory = tmp_path_factory.mktemp("local-sweep")
    grid = write_grid(directory)
    doc, _ = sweep_json(grid, "--workers", "2", "--out", directory / "out")
    return grid, doc
