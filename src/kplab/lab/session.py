"""`kplab lab up` / `down` / `clean`: a lab cluster that outlives the command that built it.

`up` starts a keeper process (`sleep infinity`, its own session) and names every namespace after
the keeper's pid (`kplab-<keeper pid>-...`): while the keeper lives, `reap_stale` leaves the lab
alone; if the keeper dies (the machine's reboot, a `kill -9`), the next lab start reaps it. The
state (keeper pid, prefix, namespaces) goes to `/run/kplab/lab.json` for `down`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from kplab.errors import InputError
from kplab.lab.netns import (
    Lab,
    LabInterrupted,
    clean_all,
    delete_namespace,
    list_namespaces,
    reap_stale,
    require,
)
from kplab.lab.topology import build
from kplab.scenario.schema import Scenario

STATE_DIR = Path("/run/kplab")
STATE_FILE = STATE_DIR / "lab.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_state(path: Path = STATE_FILE) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def up(scenario: Scenario, path: Path = STATE_FILE) -> dict[str, Any]:
    """Build the scenario's cluster and leave it running; returns the recorded state."""
    require()
    old = read_state(path)
    if old is not None and _alive(int(old.get("keeper", 0))):
        raise InputError(f"a lab is already up ({old.get('prefix')}): run `kplab lab down` first")
    # The keeper holds none of the caller's descriptors: `kplab lab up 2>&1 | tail` returns.
    keeper = subprocess.Popen(["sleep", "infinity"], start_new_session=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    lab = Lab("lab", owner_pid=keeper.pid)
    lab.catch_signals()
    try:
        cluster = build(scenario, lab)
        state = {"keeper": keeper.pid, **cluster.state()}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        return state
    except BaseException as exc:
        lab.hold_signals()  # a second Ctrl-C must not abort the cleanup
        left = lab.close()
        keeper.kill()
        keeper.wait()
        if isinstance(exc, LabInterrupted):
            exc.left += left
        raise
    finally:
        lab.release_signals()


def down(path: Path = STATE_FILE) -> list[str]:
    """Remove the lab `up` built (its namespaces, its keeper, its state file)."""
    state = read_state(path)
    if state is None:
        return []
    prefix = str(state["prefix"])
    removed = [n for n in list_namespaces() if n.startswith(prefix)]
    for name in removed:
        delete_namespace(name)
    _stop_keeper(int(state.get("keeper", 0)))
    path.unlink(missing_ok=True)
    return removed


def clean(path: Path = STATE_FILE, *, every: bool = False) -> list[str]:
    """Remove what kplab runs that are gone left behind: namespaces whose owning process (a run,
    or the keeper of `lab up`) no longer exists, and a stale state file. `every`: also those of
    runs still alive (they will fail), the `lab up` lab and its keeper."""
    state = read_state(path)
    keeper = int(state.get("keeper", 0)) if state is not None else 0
    if every:
        _stop_keeper(keeper)
        path.unlink(missing_ok=True)
        return clean_all()
    if state is not None and not _alive(keeper):
        path.unlink(missing_ok=True)
    return reap_stale()


def _stop_keeper(pid: int) -> None:
    if pid <= 1:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError, FileNotFoundError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if cmdline[:2] == [b"sleep", b"infinity"]:
            os.kill(pid, signal.SIGKILL)
