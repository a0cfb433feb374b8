"""`kplab lab matrix`: the matrix's host-kernel column measured on the real kernel.

One lab cluster from the matrix scenario (`builtin("matrix")`) serves every cell: per cell the nodes
get the mitigation's rules (kube-proxy 1.14 or 1.15, loaded with `iptables-restore`; in nftables
mode kube-proxy's tables with or without the operator's drop table, loaded with `nft`) and sysctls
(`nf_conntrack_tcp_loose` of the cause, `nf_conntrack_tcp_be_liberal`), the client node's table is
cleared of the previous cell's flows, a fresh file server starts, the client downloads once through
the Service VIP, and when the client has read `TRIGGER_BYTES` it stops itself (so the flow stands
still however slow the machine) and the cause acts (`kplab.lab.causes`). The cell
(`kplab.repro.matrix.Cell`) is measured from the kernel: invalid = the client node's `invalid`
counter, escaped = packets reaching the client pod from the backend's own address, client_rst = the
client pod's TcpOutRsts, server_reset = the file server saw ECONNRESET/EPIPE, ended = the download's
outcome ("stalled": no progress for STALL_S seconds), table_full_drops = the client node's `drop`
counter. Reasons are not logged in a child namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplab.lab import ctnetlink
from kplab.lab.causes import LAB_CAUSES, LabStage
from kplab.lab.measure import accounting, conntrack_stats, install_escape_counter, tcp_mib
from kplab.lab.netns import Lab, Netns, require
from kplab.lab.shaping import Shaper
from kplab.lab.sniff import FlowSniffer, FlowView, Injector
from kplab.lab.topology import LabCluster, build, load_node_rules, node_sysctls, set_sysctls
from kplab.lab.workload import Workload
from kplab.netfilter.conntrack.profiles import HOST
from kplab.packet import ip
from kplab.repro.causes import CAUSES, TRIGGER_BYTES, Cause
from kplab.repro.matrix import MITIGATIONS, Cell, stage
from kplab.scenario.load import builtin
from kplab.scenario.manifests import cluster_objects
from kplab.scenario.schema import LinkSpec, Scenario

STALL_S = 2.5
# An idle client speaks again after this (TCP keepalive): the emulated client reads on and sends
# window updates; a paused-and-resumed real one may have nothing to say (Linux sends a window
# update only when the window at least doubles), so a dead server would go unnoticed.
KEEPALIVE_S = 1
SPARE_SLOTS = 256
TRIGGER_WAIT_S = 30.0  # a bound: the wait returns as soon as the client has stopped at the trigger
QUIET_S = 0.1
CLIENT, SERVER = "client-1", "server-1"


@dataclass(slots=True)
class Bench:
    """The lab cluster the cells run on, with its long-lived helpers."""

    cluster: LabCluster
    workdir: Path
    sniffer: FlowSniffer
    injector: Injector
    fillers: ctnetlink.FillState = field(default_factory=ctnetlink.FillState)
    filler_cause: str = ""
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)


@contextmanager
def bench(base: Scenario) -> Iterator[Bench]:
    with Lab("matrix") as lab, tempfile.TemporaryDirectory(prefix="kplab-matrix-") as tmp:
        cluster = build(base, lab)
        svc = base.service(base.workload.service)
        install_escape_counter(cluster.pods[CLIENT], [(cluster.scenario_pod(SERVER).ip, svc.target_port)])
        sniffer = FlowSniffer(cluster.pods[SERVER], "eth0", svc.target_port)
        injector = Injector(cluster.pods[SERVER])
        try:
            yield Bench(cluster, Path(tmp), sniffer, injector)
        finally:
            sniffer.close()
            injector.close()


def configure(b: Bench, s: Scenario, cause: Cause) -> None:
    """The cell's rules and sysctls on every node; the client node's table cleared of earlier flows."""
    objects = cluster_objects(s)
    for spec in s.nodes:
        node = b.cluster.nodes[spec.name]
        set_sysctls(node, node_sysctls(s, spec)[0])
        load_node_rules(node, s, spec, objects)
        if spec.name != s.pods[0].node or not cause.id.startswith("table-full"):
            node.run(["conntrack", "-F"], check=False)
    client_node = b.cluster.nodes[s.pods[0].node]
    if cause.id.startswith("table-full"):
        if b.filler_cause != cause.id:
            client_node.run(["conntrack", "-F"], check=False)
            b.fillers.forget()
            b.filler_cause = cause.id
        else:
            for tuple_ip in (s.pods[0].ip, s.pods[1].ip):  # the previous cell's flows, fillers stay
                client_node.run(["conntrack", "-D", "-s", tuple_ip], check=False)
            b.fillers.make_room(client_node, SPARE_SLOTS)
        # Filled before the download starts (a full fill takes seconds), but for a few slots: the
        # cause fills those while the download runs.
        b.fillers.top_up(client_node, cause.id.endswith("-assured"), spare=SPARE_SLOTS)
    else:
        b.filler_cause = ""


def snapshot(b: Bench, client_node: str) -> dict[str, Any]:
    return {
        "ct": conntrack_stats(b.cluster.nodes[client_node]),
        "escape": accounting(b.cluster.pods[CLIENT])["escape"],
        "rsts": tcp_mib(b.cluster.pods[CLIENT]).get("TcpOutRsts", 0),
    }


def stopped(pid: int) -> bool:
    """The process is stopped (SIGSTOP): its state in /proc is T."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def wait_trigger(b: Bench, client: subprocess.Popen[bytes]) -> FlowView | None:
    """The flow once the client has read TRIGGER_BYTES: the client stops itself there (`--pause-at`),
    so the flow stands still however long the lab takes to act (a loaded machine let a live flow
    finish first). The view is taken once the sniffer has seen every packet and none came for
    QUIET_S (the client's window has closed)."""
    end = time.monotonic() + TRIGGER_WAIT_S
    last: FlowView | None = None
    since = time.monotonic()
    while time.monotonic() < end and client.poll() is None:
        view = b.sniffer.current() if stopped(client.pid) and b.sniffer.idle() else None
        if view != last:
            last, since = view, time.monotonic()
        elif view is not None and view.received >= TRIGGER_BYTES and time.monotonic() - since > QUIET_S:
            return view
        time.sleep(0.002)
    return None


def pauser(pid: int) -> Callable[[bool], None]:
    def pause(stop: bool) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP if stop else signal.SIGCONT)

    return pause


@dataclass(slots=True)
class QueueHold:
    """Queue (`hold(True)`) or release what leaves `ifname` in `ns` (see `Shaper.pause`)."""

    shaper: Shaper
    ns: Netns
    ifname: str
    spec: LinkSpec

    def hold(self, on: bool) -> None:
        if on:
            self.shaper.pause(self.ns, self.ifname, self.spec)
        else:
            self.shaper.resume(self.ns, self.ifname, self.spec)

    def backlog(self) -> int:
        text = self.ns.run(["tc", "-s", "qdisc", "show", "dev", self.ifname]).stdout
        found = re.search(r"backlog \S+ (\d+)p", text)
        return int(found.group(1)) if found else 0


def holds(cluster: LabCluster, client_node: str) -> tuple[QueueHold, QueueHold]:
    """(what the fabric sends towards the client node, what the client pod sends)."""
    s = cluster.scenario
    server = QueueHold(cluster.shaper, cluster.fabric, cluster.fabric_port(client_node), s.fabric_link)
    return server, QueueHold(cluster.shaper, cluster.pods[CLIENT], "eth0", s.pod_link)


def run_cell(b: Bench, cause: Cause, mitigation: str) -> Cell:
    s = stage(b.cluster.scenario, cause, HOST, mitigation)
    configure(b, s, cause)
    client_node = s.pods[0].node
    work = Workload(
        b.cluster, b.workdir / f"{cause.id}-{mitigation}", stall_s=STALL_S, keepalive_s=KEEPALIVE_S
    )
    work.workdir.mkdir(exist_ok=True)
    notes = b.notes.setdefault((cause.id, mitigation), [])
    try:
        work.start_servers()
        b.sniffer.reset()
        before = snapshot(b, client_node)
        work.start_clients(s.duration_ns / 1e9, pause_at=TRIGGER_BYTES)
        view = wait_trigger(b, work.clients[0][1])
        if view is None:
            notes.append("the download never reached the trigger: cause not applied")
        else:
            svc = s.service(s.workload.service)
            server_q, client_q = holds(b.cluster, client_node)
            at = LabStage(view, ip(svc.cluster_ip), svc.port, b.cluster.nodes[client_node], b.injector,
                          b.fillers, notes, pauser(work.clients[0][1].pid), server_q,
                          lambda: b.sniffer.server_packets, client_q)  # fmt: skip
            LAB_CAUSES[cause.id](at)  # on the stopped client's flow (some causes continue it earlier)
        pauser(work.clients[0][1].pid)(False)
        records = work.wait_clients(s.duration_ns / 1e9 + STALL_S + 5)
        after = snapshot(b, client_node)
        servers = work.server_stats()
    finally:
        work.stop()
        for pod in (CLIENT, SERVER):  # no orphan socket of this cell may send into the next one
            b.cluster.pods[pod].run(["ss", "-K", "-t", "-a"], check=False)
    errors = servers.get(SERVER, {}).get("errors", {})
    outcome = records[0]["outcome"] if records else "running"
    return Cell(cause.id, HOST, mitigation, after["ct"]["invalid"] - before["ct"]["invalid"], (),
                after["escape"] - before["escape"], after["rsts"] - before["rsts"],
                errors.get("ECONNRESET", 0) + errors.get("EPIPE", 0) > 0,
                "stalled" if outcome == "running" else outcome,
                after["ct"]["drop"] - before["ct"]["drop"])  # fmt: skip


Notes = dict[str, list[str]]


def lab_matrix(base: Scenario | None = None, causes: tuple[Cause, ...] = CAUSES,
               mitigations: tuple[str, ...] = MITIGATIONS) -> tuple[list[Cell], Notes]:  # fmt: skip
    """Every (cause, mitigation) cell on this kernel; notes per cell (`cause/mitigation`)."""
    require()
    base = base or builtin("matrix")
    with bench(base) as b:
        cells = [run_cell(b, c, m) for c in causes for m in mitigations]
        notes = {f"{c}/{m}": n for (c, m), n in b.notes.items() if n}
        notes.update({"lab": b.cluster.notes} if b.cluster.notes else {})
    return cells, notes
