"""`kplab lab` without a tool it needs: one line, exit code 2; `down` with nothing up is harmless."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel
KPLAB = Path(sys.executable).parent / "kplab"


def test_missing_tool_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for tool in ("ip", "iptables", "iptables-save", "iptables-restore", "tcpdump", "ethtool"):  # no conntrack
        found = shutil.which(tool)
        assert found, f"{tool} is needed for the lab tests"
        (tmp_path / tool).symlink_to(found)
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([str(KPLAB), "lab", "up"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "conntrack" in lines[0], proc.stderr
