"""`kplab lab repro`: the four variants of `kplab repro` on the real kernel, each an `Observation`
(`kplab.repro.observation`) as in the emulator, plus the lab's raw counters under "lab".

Each variant gets a fresh lab cluster (`kplab.repro.variants.variant` decides the rules version,
the sysctls and the workload's target, as for the emulator). Measured from the kernel:
- completed / reset / timed_out / other: what the download clients' sockets saw;
- server_resets: file-server connections that died of ECONNRESET/EPIPE;
- client_rsts: `TcpOutRsts` of the client pods (nstat);
- invalid_by_reason: the nodes' `invalid` counters of /proc/net/stat/nf_conntrack. A child
  namespace cannot log INVALID reasons (nf_log needs the host's `nf_log_all_netns`), so the key
  is `unknown (not logged in a lab namespace)`;
- unnated_escapes: packets counted leaving a node towards a client pod with a backend's own
  address while the client talks to the Service VIP;
- packets: packets seen by the nodes' PREROUTING (all ctstates); sim_seconds: the workload's wall time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from kplab.lab.measure import (
    accounting,
    conntrack_stats,
    delta,
    install_accounting,
    install_escape_counter,
    tcp_mib,
)
from kplab.lab.netns import Lab, require
from kplab.lab.topology import LabCluster, build
from kplab.lab.workload import Workload
from kplab.netfilter.conntrack.profiles import HOST
from kplab.repro.observation import Observation
from kplab.repro.variants import VARIANTS, variant
from kplab.scenario.schema import Scenario

UNKNOWN_REASON = "unknown (not logged in a lab namespace)"


def install_counters(cluster: LabCluster) -> None:
    """Per-ctstate counters on every node; escape counters in the client pods (Service target only)."""
    s = cluster.scenario
    w = s.workload
    for node in cluster.nodes.values():
        install_accounting(node)
    if w.target != "service":
        return
    port = s.service(w.service).target_port
    backends = [(b.ip, port) for b in s.hosts_matching(w.server_selector)]
    for client in s.pods_matching(w.client_selector):
        install_escape_counter(cluster.pods[client.name], backends)


def clients(cluster: LabCluster) -> list[str]:
    s = cluster.scenario
    return [p.name for p in s.pods_matching(s.workload.client_selector)]


def snapshot(cluster: LabCluster) -> dict[str, Any]:
    return {
        "conntrack": {n: conntrack_stats(ns) for n, ns in cluster.nodes.items()},
        "accounting": {n: accounting(ns) for n, ns in cluster.nodes.items()},
        "escapes": {p: accounting(cluster.pods[p]) for p in clients(cluster)},
        "tcp": {p: tcp_mib(ns) for p, ns in cluster.pods.items()},
    }


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {kind: {k: delta(v, before[kind][k]) for k, v in table.items()} for kind, table in after.items()}


def run_variant(scenario: Scenario, name: str, *, pcap_dir: Path | None = None) -> dict[str, Any]:
    s = variant(scenario, name)
    with Lab("repro") as lab, tempfile.TemporaryDirectory(prefix="kplab-lab-") as tmp:
        cluster = build(s, lab)
        install_counters(cluster)
        work = Workload(cluster, Path(tmp))
        try:
            work.start_servers()
            if pcap_dir is not None:
                work.capture(pcap_dir / name)
            before = snapshot(cluster)
            started = time.monotonic()
            deadline = s.duration_ns / 1e9
            work.start_clients(deadline)
            records = work.wait_clients(deadline + work.stall_s + 5)
            seconds = time.monotonic() - started
            changes = diff(snapshot(cluster), before)
            servers = work.server_stats()
        finally:
            work.stop()
    return summarise(cluster, records, servers, changes, seconds)


def summarise(cluster: LabCluster, records: list[dict[str, Any]], servers: dict[str, dict[str, Any]],
              changes: dict[str, Any], seconds: float) -> dict[str, Any]:  # fmt: skip
    s = cluster.scenario
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    clients = {p.name for p in s.pods_matching(s.workload.client_selector)}
    node_counts = changes["accounting"].values()
    invalid = sum(c.get("invalid", 0) for c in changes["conntrack"].values())
    seen = Observation.from_outcomes(
        outcomes,
        server_resets=sum(
            st.get("errors", {}).get(e, 0) for st in servers.values() for e in ("ECONNRESET", "EPIPE")
        ),
        client_rsts=sum(changes["tcp"][p].get("TcpOutRsts", 0) for p in clients),
        invalid_by_reason={UNKNOWN_REASON: invalid} if invalid else {},
        unnated_escapes=sum(a["escape"] for a in changes["escapes"].values()),
        packets=sum(sum(v for k, v in a.items() if k != "escape") for a in node_counts),
        sim_seconds=round(seconds, 3),
    )
    return {
        **seen.as_json(),
        "lab": {
            "conntrack": {n: {k: v for k, v in c.items() if v} for n, c in changes["conntrack"].items()},
            "ctstate": changes["accounting"],
            "downloads": records,
            "notes": cluster.notes,
        },
    }


def run_variants(scenario: Scenario, names: tuple[str, ...] = VARIANTS, *,
                 pcap_dir: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """`kplab lab repro`: every variant on the real kernel, `kplab repro`'s JSON shape."""
    require()
    started = time.perf_counter()
    results = {name: run_variant(scenario, name, pcap_dir=pcap_dir) for name in names}
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "kernel": HOST,
        "sim_seconds": max(r["sim_seconds"] for r in results.values()),
        "packets": sum(r["packets"] for r in results.values()),
        "variants": results,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
