"""`kplab compare matrix`: the lab's host column and the emulator's host profile agree everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kplab.lab.netns import list_namespaces, require
from kplab.repro.causes import CAUSES
from kplab.repro.matrix import MITIGATIONS

pytestmark = pytest.mark.kernel
KPLAB = Path(sys.executable).parent / "kplab"


@pytest.mark.parametrize("proxy_mode", ["iptables", "nftables"])
def test_compare_matrix_has_no_disagreement(proxy_mode: str) -> None:
    """Every cell, in both of kube-proxy's modes: in nftables mode the nodes hold kube-proxy's generated
    nft tables (the drop-invalid column is the operator's own `ct state invalid drop` table)."""
    require()
    proc = subprocess.Popen(
        [str(KPLAB), "compare", "matrix", "--proxy-mode", proxy_mode, "-o", "json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # A guard against a hang: 48 real downloads take ~2 min on an idle machine, far more on a busy one.
        out, _ = proc.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM unwinds through the lab's cleanup: no namespace is left behind
        proc.wait(timeout=60)
        raise
    result = json.loads(out)
    assert result["cells"] == len(CAUSES) * len(MITIGATIONS)
    assert result["disagreements"] == [], result["disagreements"]
    assert proc.returncode == 0
    # Every cell was staged as asked (a cell that could not be staged says so in its notes).
    assert set(result["notes"]) <= {"lab"}, result["notes"]
    # The lab really measured something: the far-beyond-window segment reset the server without a fix.
    lab = {(c["cause"], c["mitigation"]): c for c in result["lab"]}
    assert lab[("beyond-window-large", "none")]["server_reset"]
    assert lab[("table-full-assured", "none")]["table_full_drops"] > 0
    assert not [n for n in list_namespaces() if n.startswith(f"kplab-{proc.pid}-")]
