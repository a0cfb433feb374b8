"""The emulator in kube-proxy's nftables mode: the seed workload resets downloads as is (nftables
mode has no INVALID drop and be_liberal is off), and none in the control case, with the operator's
own drop table or with be_liberal, for several seeds; the matrix's cells in nftables mode."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kplab.repro.causes import CAUSES
from kplab.repro.matrix import matrix
from kplab.repro.run import run_variants
from kplab.scenario.load import builtin
from kplab.scenario.schema import with_proxy_mode


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resets_as_is_and_none_with_a_fix(seed: int) -> None:
    scenario = replace(with_proxy_mode(builtin(), "nftables"), seed=seed)
    variants = run_variants(scenario)["variants"]
    as_is = variants["as_is"]
    assert as_is["reset"] > 0 and as_is["server_resets"] > 0 and as_is["unnated_escapes"] > 0
    for name in ("control", "drop_invalid", "be_liberal"):
        v = variants[name]
        assert (v["reset"], v["server_resets"], v["unnated_escapes"]) == (0, 0, 0), (seed, name)
        assert v["completed"] == as_is["completed"] + as_is["reset"] + as_is["timed_out"] + as_is["other"]


def test_matrix_cell_in_nftables_mode() -> None:
    cause = tuple(c for c in CAUSES if c.id == "beyond-window-large")
    base = with_proxy_mode(builtin("matrix"), "nftables")
    cells = {c.mitigation: c for c in matrix(base, cause, ("6.1",))}
    assert cells["none"].ended == "reset" and cells["none"].escaped > 0 and cells["none"].server_reset
    for mitigation in ("drop-invalid", "be-liberal", "both"):
        assert cells[mitigation].ended == "completed" and cells[mitigation].escaped == 0, mitigation
