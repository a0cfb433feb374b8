"""Shared helpers of the doctor tests: the data folder and running `kplab doctor` in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kplab.diagnose import Report, Sources, diagnose, load
from kplab_cli import run_main as run

DATA = Path(__file__).resolve().parent.parent / "data" / "doctor"
SYSCTL_DEFAULT = str(DATA / "sysctl-default.txt")


def report(**sources: Any) -> Report:
    return diagnose(load(Sources(**sources)))


def sysctl_file(tmp_path: Path, name: str = "sysctl.txt", **values: int) -> str:
    """A `sysctl -a` subset: key names after the last dot, e.g. nf_conntrack_tcp_be_liberal=1."""
    path = tmp_path / name
    path.write_text("".join(f"net.netfilter.{k} = {v}\n" for k, v in values.items()))
    return str(path)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *args, "-o", "json")
    assert code in (0, 1), err
    return code, json.loads(out)
