"""Run a scenario in the emulator: build, capture (optional), advance simulated time, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kplab.net.capture import capture_link
from kplab.net.cluster import EmulatedCluster, build
from kplab.net.summary import summary
from kplab.report.pcapng import PcapngWriter
from kplab.scenario.schema import Scenario
from kplab.untrusted import path_inside

SLICE_NS = 50_000_000  # progress is reported every 50 ms of simulated time

Progress = Callable[[int, int], None]  # (now_ns, until_ns)


def capture_nodes(cluster: EmulatedCluster, directory: Path, stack: ExitStack) -> None:
    """One pcapng per node, one interface block per node interface (as tcpdump -i any would see)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, node in cluster.nodes.items():
        node.annotate = True
        writer = PcapngWriter(stack.enter_context(path_inside(directory, f"{name}.pcapng").open("wb")))
        capture_link(writer, cluster.links[f"{name}-fabric"], "a", f"{name}:eth0")
        for pod in cluster.pods.values():
            if pod.node == name:
                capture_link(writer, cluster.links[f"{pod.name}-veth"], "b", f"{name}:veth-{pod.name}")


def run(scenario: Scenario, *, pcap_dir: Path | None = None, progress: Progress | None = None,
        setup: Callable[[EmulatedCluster], None] | None = None,
        ) -> tuple[EmulatedCluster, dict[str, Any]]:  # fmt: skip
    """Build the scenario's cluster, let `setup` attach observers, run it, summarise it."""
    started = time.perf_counter()
    cluster = build(scenario)
    if setup is not None:
        setup(cluster)
    with ExitStack() as stack:
        if pcap_dir is not None:
            capture_nodes(cluster, pcap_dir, stack)
        until = scenario.duration_ns
        now = 0
        while now < until:
            now = min(until, now + SLICE_NS)
            cluster.sched.run(until_ns=now)
            if progress is not None:
                progress(now, until)
            if _all_done(cluster):
                break
    result = summary(cluster)
    result["wall_seconds"] = round(time.perf_counter() - started, 3)
    return cluster, result


def _all_done(cluster: EmulatedCluster) -> bool:
    """Every download ended and every planned download started: nothing left worth simulating."""
    w = cluster.scenario.workload
    planned = w.downloads * w.parallel * len(cluster.workloads)
    started = [d for ws in cluster.workloads.values() for x in ws for d in x.downloads]
    return len(started) >= planned and all(d.outcome.value != "running" for d in started)
