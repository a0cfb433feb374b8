"""BENCHMARKS.md sections: each benchmark owns one `## TITLE` section and rewrites only it."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

PATH = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
INTRO = (
    "# Benchmarks\n\n"
    "Produced by `make bench` (`python -m bench [NAME...]`). Each section says the machine and the date "
    "it was measured on; ratios in a section come from one run, side by side.\n"
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}; {datetime.date.today().isoformat()}"
    )


def update_section(title: str, body: str) -> None:
    text = PATH.read_text() if PATH.exists() else INTRO
    section = f"## {title}\n\n_Machine: {machine()}_\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    PATH.write_text(text.rstrip("\n") + "\n")
