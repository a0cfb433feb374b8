"""The lab under an impatient user: two Ctrl-C in a row, `lab up | tail`, `lab clean` next to live runs.

Every namespace these tests look at is named after a process they started (or their own pid):
other engineers' runs on the same machine are never touched (no `lab clean --all`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kplab.lab.netns import owned_by

pytestmark = pytest.mark.kernel
KPLAB = Path(sys.executable).parent / "kplab"


def wait_until_namespaces(proc: subprocess.Popen[str], prefix: str, count: int) -> int:
    """Wait (polling, no fixed sleep) until the run has made `count` namespaces; how many it has."""
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        made = len(owned_by(prefix))
        if made >= count:
            return made
        time.sleep(0.01)
    pytest.fail(f"the lab run made fewer than {count} namespaces (exit {proc.poll()})")


@pytest.mark.parametrize("after", [1, 5, 9])  # while building the cluster, and once it runs
def test_two_sigints_in_a_row_leave_nothing(after: int) -> None:
    """Before: the second SIGINT interrupted the cleanup and 2-6 namespaces stayed, while the run
    said they were removed."""
    proc = subprocess.Popen([str(KPLAB), "lab", "repro", "--fix", "none"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    prefix = f"kplab-{proc.pid}-"
    try:
        wait_until_namespaces(proc, prefix, after)
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.05)  # the impatient user's second Ctrl-C (the spacing, not a timing assertion)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = owned_by(prefix)
    assert left == [], f"left behind: {left}"
    assert proc.returncode == 130
    assert err.count("\n") == 1 and "the lab's namespaces were removed" in err, err


def test_lab_up_keeper_does_not_hold_the_callers_pipes(tmp_path: Path) -> None:
    """Before: `kplab lab up 2>&1 | tail` never returned: the keeper kept the stderr pipe open."""
    state = tmp_path / "lab.json"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kplab.lab import session\n"
        "from kplab.scenario.load import builtin\n"
        f"print(session.up(builtin('seed'), Path({str(state)!r}))['keeper'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    keeper = 0
    try:
        out, _ = proc.communicate(timeout=240)  # returns only when every writer closed the pipe
        assert proc.returncode == 0, out
        keeper = int(out.split()[-1])
        assert owned_by(f"kplab-{keeper}-"), "the lab should be up"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        from kplab.lab import session

        session.down(state)
    assert keeper and not owned_by(f"kplab-{keeper}-")


def test_clean_removes_only_namespaces_of_processes_that_are_gone() -> None:
    """Before: `kplab lab clean` removed every kplab namespace, crashing runs still alive."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_ns = f"kplab-{gone.pid}-cleantest0-x"
    live_ns = f"kplab-{os.getpid()}-cleantest0-y"
    for name in (dead_ns, live_ns):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = subprocess.run([str(KPLAB), "lab", "clean"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert owned_by(f"kplab-{gone.pid}-") == []
        assert owned_by(f"kplab-{os.getpid()}-cleantest0-") == [live_ns]
    finally:
        for name in (dead_ns, live_ns):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


FINALIZER_RUN = """
import os, signal, time
from kplab.lab.netns import Lab, LabInterrupted

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100_000):  # the handler runs here, inside the finalizer
            pass

try:
    with Lab("fin"):
        Finalized()  # dropped at once: its __del__ runs now, as Popen.__del__ does in a collection
        deadline = time.monotonic() + 60  # the rest of the run: the interrupt ends it, however late
        while time.monotonic() < deadline:
            pass
        print("went on")
except LabInterrupted as exc:
    print("interrupted", exc)
"""


def test_a_signal_during_a_finalizer_still_interrupts_the_run() -> None:
    """Before: Ctrl-C landing in a `__del__` printed "Exception ignored in ..." with a traceback and
    the run went on as if nothing had come (the handler's exception is dropped there)."""
    done = subprocess.run([sys.executable, "-c", FINALIZER_RUN], capture_output=True, text=True, timeout=120)
    assert done.stdout == "interrupted signal 2\n", done.stdout + done.stderr
    assert done.stderr == ""
