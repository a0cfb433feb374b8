"""The lab builds a scenario's two-node cluster in namespaces and removes it completely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kplab.lab import session
from kplab.lab.netns import Lab, list_namespaces, require
from kplab.lab.topology import build
from kplab.scenario.load import builtin

pytestmark = pytest.mark.kernel


def test_two_node_cluster_builds_and_tears_down(lab: Lab) -> None:
    cluster = build(builtin("matrix"), lab)
    assert set(cluster.nodes) == {"node-a", "node-b"}
    assert set(cluster.pods) == {"client-1", "server-1"}
    node_a = cluster.nodes["node-a"]
    assert node_a.read("/proc/sys/net/ipv4/ip_forward").strip() == "1"
    routes = node_a.run(["ip", "route"]).stdout
    assert "10.0.0.2 dev veth-client-1" in routes
    assert "10.0.1.0/24 via 172.16.0.2 dev eth0 onlink" in routes
    saved = node_a.run(["iptables-save"]).stdout
    assert "-A KUBE-SERVICES -d 192.168.0.2/32" in saved
    assert "MASQUERADE" in saved
    offloads = node_a.run(["ethtool", "-k", "veth-client-1"]).stdout
    assert "tcp-segmentation-offload: off" in offloads
    names = [ns.name for ns in lab.namespaces]
    assert all(n in list_namespaces() for n in names)
    lab.close()
    assert not [n for n in list_namespaces() if n.startswith(lab.prefix)]


def test_up_and_down_keep_state(tmp_path: Path) -> None:
    require()
    state_file = tmp_path / "lab.json"
    state = session.up(builtin("matrix"), state_file)
    try:
        prefix = state["prefix"]
        assert state_file.exists()
        assert len([n for n in list_namespaces() if n.startswith(prefix)]) == 5  # fabric, 2 nodes, 2 pods
        Lab("t")  # another lab's start must not reap a lab that is up (its keeper lives)
        assert len([n for n in list_namespaces() if n.startswith(prefix)]) == 5
    finally:
        removed = session.down(state_file)
    assert len(removed) == 5
    assert not [n for n in list_namespaces() if n.startswith(prefix)]
    assert not state_file.exists()


SLEEPER = """
import sys, time
from kplab.lab.netns import Lab
from kplab.lab.topology import build
from kplab.scenario.load import builtin
lab = Lab("killed")
build(builtin("matrix"), lab)
print(lab.prefix, flush=True)
time.sleep(600)
"""


def test_sigkill_mid_run_leaves_nothing_after_next_start() -> None:
    require()
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    prefix = proc.stdout.readline().strip()
    assert prefix.startswith(f"kplab-{proc.pid}-")
    assert [n for n in list_namespaces() if n.startswith(prefix)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Lab("t"):
        pass
    deadline = time.monotonic() + 5
    while [n for n in list_namespaces() if n.startswith(prefix)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [n for n in list_namespaces() if n.startswith(prefix)]
