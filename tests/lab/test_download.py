"""A download through the ClusterIP crosses every hop with the addresses it should have (tcpdump)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kplab.lab.netns import Lab, Netns
from kplab.lab.topology import build
from kplab.lab.workload import Workload
from kplab.scenario.load import builtin

pytestmark = pytest.mark.kernel
HEADER = re.compile(r" IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+):")


def _tcpdump(ns: Netns, ifname: str, out: Path) -> subprocess.Popen[bytes]:
    proc = ns.popen(
        ["tcpdump", "-l", "-nn", "-i", ifname, "tcp"], stdout=out.open("wb"), stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on ...": the capture is armed
    return proc


def _pairs(path: Path) -> set[tuple[str, str]]:
    pairs = set()
    for line in path.read_text().splitlines():
        m = HEADER.search(line)
        if m:
            pairs.add((f"{m.group(1)}:{m.group(2)}", f"{m.group(3)}:{m.group(4)}"))
    return pairs


def test_clusterip_download_addresses_on_every_hop(lab: Lab, tmp_path: Path) -> None:
    cluster = build(builtin("matrix"), lab)
    work = Workload(cluster, tmp_path)
    hops = {
        "client": (cluster.pods["client-1"], "eth0"),
        "node-a-fabric": (cluster.nodes["node-a"], "eth0"),
        "node-b-pod": (cluster.nodes["node-b"], "veth-server-1"),
        "server": (cluster.pods["server-1"], "eth0"),
    }
    captures = {name: _tcpdump(ns, ifname, tmp_path / f"{name}.txt") for name, (ns, ifname) in hops.items()}
    try:
        work.start_servers()
        work.start_clients(20)
        records = work.wait_clients(30)
    finally:
        time.sleep(0.2)
        for proc in captures.values():
            proc.terminate()
            proc.wait()
        work.stop()
    assert [r["outcome"] for r in records] == ["completed"]
    port = records[0]["local_port"]
    client, vip, pod = f"10.0.0.2:{port}", "192.168.0.2:80", "10.0.1.2:80"
    seen = {name: _pairs(tmp_path / f"{name}.txt") for name in hops}
    # The client only ever talks to the VIP, and hears back from the VIP.
    assert seen["client"] == {(client, vip), (vip, client)}
    # Between the nodes and on to the backend: DNATed to the pod, the client's own address kept.
    for hop in ("node-a-fabric", "node-b-pod", "server"):
        assert seen[hop] == {(client, pod), (pod, client)}, hop


def test_lab_repro_reports_the_emulators_keys(namespaces_made: Callable[[], list[str]]) -> None:
    from kplab.lab.repro import run_variants
    from kplab.repro.run import run_variants as emulate

    scenario = builtin("matrix")
    lab = run_variants(scenario, ("as_is",))
    emulator = emulate(scenario, ("as_is",))
    assert set(lab) >= set(emulator)
    variant = lab["variants"]["as_is"]
    assert set(variant) - {"lab"} == set(emulator["variants"]["as_is"])
    # One clean download through the VIP: completed, nothing reset, nothing escaped, packets counted.
    assert (variant["completed"], variant["reset"], variant["server_resets"]) == (1, 0, 0)
    assert variant["unnated_escapes"] == 0 and variant["client_rsts"] == 0
    assert variant["packets"] > 1000
    assert not namespaces_made()
