"""The scenario's workload on real sockets: file servers on the backends, download clients in the
client pods (`kplab.lab.apps`, run with `ip netns exec`), tcpdump captures on request."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplab.lab.netns import Netns
from kplab.lab.topology import LabCluster
from kplab.scenario.schema import PodSpec
from kplab.untrusted import path_inside

APPS = [sys.executable, "-m", "kplab.lab.apps"]


@dataclass(slots=True)
class Workload:
    cluster: LabCluster
    workdir: Path
    stall_s: float = 5.0
    keepalive_s: int = 0
    servers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    clients: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    captures: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def backends(self) -> list[PodSpec]:
        s = self.cluster.scenario
        return s.pods_matching(s.workload.server_selector)

    def start_servers(self) -> None:
        s = self.cluster.scenario
        w, svc = s.workload, s.service(s.workload.service)
        for spec in self.backends():
            out = self.workdir / f"server-{spec.name}.json"
            self.servers[spec.name] = self.cluster.pods[spec.name].popen(
                [*APPS, "server", "--addr", spec.ip, "--port", str(svc.target_port), "--file-bytes",
                 str(w.file_bytes), "--request-bytes", str(w.request_bytes), "--out", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        for spec in self.backends():
            while not (self.workdir / f"server-{spec.name}.json").exists():
                if time.monotonic() > deadline or self.servers[spec.name].poll() is not None:
                    raise RuntimeError(f"the file server in {spec.name} did not start")
                time.sleep(0.01)

    def lanes(self) -> list[tuple[str, str, int]]:
        """(client pod, target ip:port, parallel) as the emulator's workload assigns them."""
        s = self.cluster.scenario
        w, svc = s.workload, s.service(s.workload.service)
        backends = self.backends()
        lanes: list[tuple[str, str, int]] = []
        k = 0
        for spec in s.pods_matching(w.client_selector):
            if w.target == "service":
                lanes.append((spec.name, f"{svc.cluster_ip}:{svc.port}", w.parallel))
                continue
            for _ in range(w.parallel):
                lanes.append((spec.name, f"{backends[k % len(backends)].ip}:{svc.target_port}", 1))
                k += 1
        return lanes

    def start_clients(self, deadline_s: float, pause_at: int = 0) -> None:
        """The download clients; with `pause_at`, each stops itself once its first download has read
        that many bytes, until continued (`kplab.lab.apps`)."""
        s = self.cluster.scenario
        w = s.workload
        for i, (pod, target, parallel) in enumerate(self.lanes()):
            out = self.workdir / f"client-{i}-{pod}.json"
            args = [*APPS, "client", "--target", target, "--file-bytes", str(w.file_bytes),
                    "--request-bytes", str(w.request_bytes), "--parallel", str(parallel),
                    "--downloads", str(w.downloads), "--read-rate", str(w.read_rate_bps),
                    "--rcvbuf", str(s.tcp_rcvbuf_bytes), "--spread", str(w.start_spread_ns / 1e9),
                    "--stall", str(self.stall_s), "--deadline", str(deadline_s),
                    "--keepalive", str(self.keepalive_s), "--pause-at", str(pause_at),
                    "--seed", str(s.seed * 1000 + i), "--out", str(out)]  # fmt: skip
            proc = self.cluster.pods[pod].popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.clients.append((pod, proc, out))

    def wait_clients(self, timeout_s: float) -> list[dict[str, Any]]:
        """Every download's record (clients killed at the timeout count their downloads as running)."""
        end = time.monotonic() + timeout_s
        records: list[dict[str, Any]] = []
        for pod, proc, out in self.clients:
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if out.exists():
                records += [{**r, "pod": pod} for r in json.loads(out.read_text())]
            else:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise RuntimeError(f"the download client in {pod} left no results: {err[-300:]}")
        return records

    def server_stats(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in self.servers:
            path = self.workdir / f"server-{name}.json"
            out[name] = json.loads(path.read_text()) if path.exists() else {}
        return out

    def capture(self, directory: Path) -> None:
        """tcpdump on every interface of every node (one pcap per node)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, node in self.cluster.nodes.items():
            self.captures.append(_tcpdump(node, path_inside(directory, f"{name}.pcap")))
        time.sleep(0.3)  # tcpdump opens its sockets asynchronously

    def stop(self) -> None:
        for proc in self.captures:
            proc.send_signal(signal.SIGINT)
        for proc in self.captures:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for _, proc, _ in self.clients:
            if proc.poll() is None:
                proc.kill()
        for proc in self.servers.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _tcpdump(ns: Netns, path: Path) -> subprocess.Popen[bytes]:
    return ns.popen(["tcpdump", "-i", "any", "-n", "-U", "-s", "128", "-w", str(path), "tcp"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
