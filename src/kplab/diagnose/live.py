"""`--live`: read this host's (this network namespace's) state, read-only.

Runs `iptables-save` and `nft -j list ruleset` (both only list), reads /proc/sys/net/netfilter,
/proc/net/stat/nf_conntrack (twice, `interval_s` apart, when interval_s > 0) and the kernel
release. Never writes, never loads a module: a piece that is not there is noted and skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from kplab.diagnose import ctstats, nft, rules, sysctl
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.kernel import parse_release
from kplab.errors import InputError

SYSCTL_DIR = Path("/proc/sys/net/netfilter")
STAT_FILE = Path("/proc/net/stat/nf_conntrack")
GLOBAL_MAX = Path("/proc/sys/net/nf_conntrack_max")


def _command(args: list[str]) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout if proc.returncode == 0 else None


def _sysctl_text() -> str:
    lines = []
    for path in sorted(SYSCTL_DIR.glob("nf_conntrack_*")) + ([GLOBAL_MAX] if GLOBAL_MAX.exists() else []):
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        key = ".".join(path.relative_to("/proc/sys").parts)
        lines.append(f"{key} = {value}")
    return "\n".join(lines)


def gather(interval_s: float, sleep: Callable[[float], None] = time.sleep) -> Inputs:
    inp = Inputs(live=True)
    saved = _command(["iptables-save"])
    if saved is None:
        inp.notes.append("iptables-save: not available or failed")
    else:
        inp.rules = rules.analyse(saved, "<live iptables-save>")
    listed = _command(["nft", "-j", "list", "ruleset"])
    if listed:
        try:
            inp.nft = nft.analyse(listed, "<live nft -j list ruleset>")
        except InputError as exc:  # something on this node kplab cannot read: say so, go on
            inp.notes.append(f"nft: not read: {exc}")
    text = _sysctl_text()
    if text:
        inp.sysctls = sysctl.parse(text, "<live /proc/sys>")
    else:
        inp.notes.append(f"{SYSCTL_DIR}: no conntrack sysctls (nf_conntrack not loaded here)")
    if STAT_FILE.exists():
        inp.ct_samples.append(ctstats.parse(STAT_FILE.read_text(), f"<live {STAT_FILE} #1>"))
        if interval_s > 0:
            sleep(interval_s)
            inp.ct_samples.append(ctstats.parse(STAT_FILE.read_text(), f"<live {STAT_FILE} #2>"))
            inp.sample_interval_s = interval_s
    else:
        inp.notes.append(f"{STAT_FILE}: absent (nf_conntrack not loaded here)")
    inp.kernel = parse_release(os.uname().release, "uname")
    return inp
