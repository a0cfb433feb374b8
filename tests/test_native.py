"""The compiled build (kplab._native): it computes exactly what the sources compute, and a compiled
module that no longer matches its source is never used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kplab import _native

COMPILED = _native.kind() == "compiled"
needs_compiled = pytest.mark.skipif(not COMPILED, reason="this install is pure Python (KPLAB_PURE=1 build)")


def _kplab(args: list[str], *, pure: bool, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(_native.PURE_ENV, None)
    if pure:
        env[_native.PURE_ENV] = "1"
    code = "import sys; from kplab.cli import main; sys.argv[0] = 'kplab'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )


@needs_compiled
def test_version_says_which_build(tmp_path: Path) -> None:
    assert _kplab(["--version"], pure=False, cwd=tmp_path).stdout.strip().endswith("(compiled)")
    assert _kplab(["--version"], pure=True, cwd=tmp_path).stdout.strip().endswith("(pure Python)")


@needs_compiled
def test_compiled_and_pure_give_the_same_bytes(tmp_path: Path) -> None:
    """`kplab repro -o json --seed 5 --pcap DIR` compiled and with the compiled modules hidden: the same
    JSON (wall time aside) and byte-identical pcapng captures."""
    outputs: dict[bool, tuple[dict[str, object], dict[str, bytes]]] = {}
    for pure in (False, True):
        pcaps = tmp_path / ("pure" if pure else "compiled")
        args = ["repro", "-o", "json", "--seed", "5", "--fix", "none", "--pcap", str(pcaps)]
        result = json.loads(_kplab(args, pure=pure, cwd=tmp_path).stdout)
        result.pop("wall_seconds")
        files = {str(p.relative_to(pcaps)): p.read_bytes() for p in sorted(pcaps.rglob("*.pcapng"))}
        outputs[pure] = (result, files)
    (compiled_json, compiled_pcaps), (pure_json, pure_pcaps) = outputs[False], outputs[True]
    assert compiled_pcaps, "no captures written"
    assert compiled_json == pure_json
    assert compiled_pcaps.keys() == pure_pcaps.keys()
    for name, data in compiled_pcaps.items():
        assert data == pure_pcaps[name], name


@needs_compiled
def test_a_stale_compiled_module_is_not_used(tmp_path: Path) -> None:
    """A copy of the compiled package with one hot module edited and not rebuilt: kplab warns, runs the
    edited source (not the stale `.so` next to it) and says pure Python."""
    copy = tmp_path / "kplab"
    shutil.copytree(_native.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy / "tcp" / "cc.py"
    edited.write_text(edited.read_text() + "\nEDITED_MARKER = 1\n")
    code = (
        "import kplab, kplab.tcp.cc as cc; from kplab import _native; "
        "print(_native.kind(), cc.__file__.endswith('.py'), getattr(cc, 'EDITED_MARKER', 0))"
    )
    env = {k: v for k, v in os.environ.items() if k != _native.PURE_ENV}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["pure", "Python", "True", "1"]
    assert "compiled modules were built from other sources" in done.stderr
    # the unedited copy uses its compiled modules, silently
    edited.write_text(edited.read_text().replace("\nEDITED_MARKER = 1\n", ""))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["compiled", "False", "0"]
    assert done.stderr == ""


def test_the_build_hash_covers_every_hot_module(tmp_path: Path) -> None:
    """Changing any hot module's source changes the hash the guard compares."""
    root = tmp_path / "src"
    for rel in _native.hot_paths():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x = 1\n")
    base = _native.source_hash(root)
    for rel in _native.hot_paths():
        (root / rel).write_text("x = 2\n")
        assert _native.source_hash(root) != base, rel
        (root / rel).write_text("x = 1\n")
    assert _native.source_hash(root) == base
