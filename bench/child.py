"""Run one benchmark function in a child process, compiled or pure Python (`KPLAB_PURE=1` hides the
compiled modules), and read back its JSON result and the child's peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The peak RSS is the process's own memory's high-water mark (VmHWM), not getrusage's ru_maxrss: Linux
# carries ru_maxrss across fork and exec, so a child of a large parent would report the parent's size.
CODE = (
    "import json, re, sys, importlib\n"
    "module, func, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n"
    "result = getattr(importlib.import_module(module), func)(*args)\n"
    "from kplab import _native\n"
    "status = open('/proc/self/status').read()\n"
    "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) * 1024\n"
    "print(json.dumps({'result': result, 'peak_rss': peak, 'kind': _native.kind()}))\n"
)


def call(module: str, func: str, *args: Any, pure: bool = False) -> tuple[Any, int]:
    """`module.func(*args)` (JSON in and out) in a fresh interpreter: (result, peak RSS in bytes)."""
    env = {k: v for k, v in os.environ.items() if k != "KPLAB_PURE"}
    if pure:
        env["KPLAB_PURE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", CODE, module, func, json.dumps(args)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{module}.{func}{args} failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    want = "pure Python" if pure else "compiled"
    if out["kind"] != want:
        raise RuntimeError(f"{module}.{func}: ran {out['kind']}, wanted {want} (run `make` first)")
    return out["result"], int(out["peak_rss"])
