"""The layering ARCHITECTURE.md states is enforced: `lint-imports` (the contracts in pyproject.toml,
also run by `make lint`) passes on the tree and fails as soon as a module imports upwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of kplab's sources to break."""
    shutil.copytree(
        ROOT / "src" / "kplab", tmp_path / "src" / "kplab", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path / "src"


def test_the_tree_keeps_its_layers(tree: Path) -> None:
    result = _lint(tree, tree.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("packet/addr.py", "kplab.netfilter.conntrack"),  # the bottom reaching into the middle
        ("kubeproxy/objects.py", "kplab.lab.netns"),  # the arrow kubeproxy.kernel used to draw
        ("report/pcapng.py", "kplab.net.link"),  # the arrow capture_link used to draw
        ("diagnose/rules.py", "kplab.lab.netns"),  # two siblings of one layer stay independent
    ],
)
def test_an_upward_import_breaks_the_check(tree: Path, module: str, upward: str) -> None:
    path = tree / "kplab" / module
    path.write_text(path.read_text() + f"\nimport {upward}  # noqa: E402\n")
    result = _lint(tree, tree.parent)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kplab depends downwards only BROKEN" in result.stdout
    assert f"kplab.{module[:-3].replace('/', '.')} -> {upward}" in result.stdout


def test_a_new_package_needs_a_place(tree: Path) -> None:
    (tree / "kplab" / "newthing").mkdir()
    (tree / "kplab" / "newthing" / "__init__.py").write_text('"""Nowhere yet."""\n')
    result = _lint(tree, tree.parent)
    assert result.returncode == 1 and "newthing" in result.stdout, result.stdout
