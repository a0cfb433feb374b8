"""Shared helpers of the doctor tests: the data folder and running `kplab doctor` in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from kplab.cli import main
from kplab.diagnose import Report, Sources, diagnose, load

DATA = Path(__file__).resolve().parent.parent / "data" / "doctor"
SYSCTL_DEFAULT = str(DATA / "sysctl-default.txt")


def report(**sources: Any) -> Report:
    return diagnose(load(Sources(**sources)))


def sysctl_file(tmp_path: Path, name: str = "sysctl.txt", **values: int) -> str:
    """A `sysctl -a` subset: key names after the last dot, e.g. nf_conntrack_tcp_be_liberal=1."""
    path = tmp_path / name
    path.write_text("".join(f"net.netfilter.{k} = {v}\n" for k, v in values.items()))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`kplab ARGS` through the real entry point: (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["kplab", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *args, "-o", "json")
    assert code in (0, 1), err
    return code, json.loads(out)
