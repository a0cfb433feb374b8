"""Causes on the real kernel: a crafted far-beyond-window segment, and the lost entry."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from kplab.lab import causes
from kplab.lab.compare import disagreements
from kplab.lab.matrix import lab_matrix
from kplab.netfilter.conntrack.profiles import HOST
from kplab.repro.causes import CAUSES
from kplab.repro.matrix import matrix
from kplab.scenario.load import builtin

pytestmark = pytest.mark.kernel


def _cause(cause_id: str) -> tuple:  # type: ignore[type-arg]
    return tuple(c for c in CAUSES if c.id == cause_id)


def test_far_beyond_window_resets_the_server_unless_invalid_is_dropped(
    namespaces_made: Callable[[], list[str]],
) -> None:
    cells, notes = lab_matrix(causes=_cause("beyond-window-large"), mitigations=("none", "drop-invalid"))
    plain, dropped = cells
    assert not {k: v for k, v in notes.items() if k != "lab"}
    # The client node calls it INVALID, lets it out un-NATed, the client RSTs the pod IP, the server dies.
    assert plain.invalid > 0 and plain.escaped > 0 and plain.client_rst > 0
    assert plain.server_reset and plain.ended == "reset"
    # kube-proxy 1.15's DROP rule: nothing escapes (the server's node already drops it), download completes.
    assert dropped.escaped == 0 and dropped.client_rst == 0
    assert not dropped.server_reset and dropped.ended == "completed"
    assert not namespaces_made()


def test_lost_entry_resets_even_with_both_fixes(namespaces_made: Callable[[], list[str]]) -> None:
    cells, notes = lab_matrix(causes=_cause("lost-server-next-loose1"), mitigations=("both",))
    (both,) = cells
    assert not {k: v for k, v in notes.items() if k != "lab"}
    # loose=1 picks the server's next packet up as a NEW flow without NAT: neither the DROP rule
    # (it is not INVALID) nor be_liberal (no window check fails) stops it.
    assert both.escaped > 0 and both.client_rst > 0
    assert both.server_reset and both.ended == "reset"
    assert not namespaces_made()


def test_a_slow_lab_stages_what_the_emulator_does(
    monkeypatch: pytest.MonkeyPatch, namespaces_made: Callable[[], list[str]]
) -> None:
    """However long the lab takes to act after the trigger (here 1.5 s more than the ~0.5 s the rest
    of the download takes, as a loaded machine may make it), the cause acts on the flow at the
    trigger: the client stopped there. (A live flow finished first: `completed`, no packet counted.)"""
    chosen = ("lost-client-next-loose0", "lost-server-next-loose0", "beyond-window-large")
    for cause_id in chosen:
        act = causes.LAB_CAUSES[cause_id]

        def late(st: causes.LabStage, act: Callable[[causes.LabStage], None] = act) -> None:
            time.sleep(1.5)
            act(st)

        monkeypatch.setitem(causes.LAB_CAUSES, cause_id, late)
    rows = tuple(c for c in CAUSES if c.id in chosen)
    mitigations = ("none", "both")
    cells, notes = lab_matrix(causes=rows, mitigations=mitigations)
    assert not {k: v for k, v in notes.items() if k != "lab"}
    emulator = [c for c in matrix(builtin("matrix"), rows, (HOST,)) if c.mitigation in mitigations]
    assert disagreements(cells, emulator) == []
    assert {c.ended for c in cells if c.cause.startswith("lost-")} == {"stalled"}
    assert not namespaces_made()
