"""The lab in kube-proxy's nftables mode: the node namespaces hold kube-proxy's generated
`ip kube-proxy` table (loaded with the real `nft -f`), a download through the ClusterIP is DNATed
by it, and the far-beyond-window segment resets the server as is (nftables mode has no INVALID
drop), but neither with the operator's own drop table nor with be_liberal."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kplab.kubeproxy.nftmode.canon import canonical
from kplab.lab.kpnft import list_json
from kplab.lab.matrix import lab_matrix
from kplab.lab.netns import Lab
from kplab.lab.topology import build
from kplab.lab.workload import Workload
from kplab.repro.causes import CAUSES
from kplab.scenario.load import builtin
from kplab.scenario.manifests import cluster_objects, node_nft
from kplab.scenario.schema import with_proxy_mode

pytestmark = pytest.mark.kernel


def test_nodes_hold_the_generated_table_and_a_download_is_dnated(lab: Lab, tmp_path: Path) -> None:
    scenario = with_proxy_mode(builtin("matrix"), "nftables")
    cluster = build(scenario, lab)
    objects = cluster_objects(scenario)
    for spec in scenario.nodes:
        listing = list_json(cluster.nodes[spec.name])
        kube_proxy = {k: v for k, v in canonical(listing).items() if k[2] == "kube-proxy"}
        assert kube_proxy == canonical(node_nft(scenario, spec, objects).json())
        # the CNI's masquerade rule stays with iptables (iptables-nft), nothing else does
        tables = {(t["table"]["family"], t["table"]["name"]) for t in listing["nftables"] if "table" in t}
        assert tables == {("ip", "kube-proxy"), ("ip", "nat")}
    work = Workload(cluster, tmp_path)
    try:
        work.start_servers()
        work.start_clients(20)
        records = work.wait_clients(30)
    finally:
        work.stop()
    assert [r["outcome"] for r in records] == ["completed"]
    node_a = cluster.nodes["node-a"]
    entries = node_a.run(["conntrack", "-L", "-p", "tcp"], check=False).stdout
    assert "dst=192.168.0.2 sport" in entries and "src=10.0.1.2" in entries  # the VIP, DNATed to the pod


def test_far_beyond_window_resets_as_is_but_not_with_either_fix(
    namespaces_made: Callable[[], list[str]],
) -> None:
    cause = tuple(c for c in CAUSES if c.id == "beyond-window-large")
    base = with_proxy_mode(builtin("matrix"), "nftables")
    cells, notes = lab_matrix(base, cause, ("none", "drop-invalid", "be-liberal"))
    plain, dropped, liberal = cells
    assert not {k: v for k, v in notes.items() if k != "lab"}
    assert plain.invalid > 0 and plain.escaped > 0 and plain.client_rst > 0
    assert plain.server_reset and plain.ended == "reset"
    for fixed in (dropped, liberal):
        assert fixed.escaped == 0 and fixed.client_rst == 0, fixed
        assert not fixed.server_reset and fixed.ended == "completed", fixed
    assert not namespaces_made()


def test_compare_matrix_in_nftables_mode_agrees_on_the_crafted_causes() -> None:
    """The lab and the emulator's host profile, both in nftables mode (the causes that depend on
    neither table filling nor timing: a crafted old duplicate and a crafted far-beyond-window
    segment), four mitigations each."""
    kplab = Path(sys.executable).parent / "kplab"
    args = ["compare", "matrix", "--proxy-mode", "nftables", "-o", "json"]
    args += ["--cause", "beyond-window-large", "--cause", "old-duplicate"]
    proc = subprocess.run([str(kplab), *args], capture_output=True, text=True, check=False, timeout=900)
    result = json.loads(proc.stdout)
    assert result["cells"] == 8 and result["disagreements"] == [], result["disagreements"]
    assert proc.returncode == 0
