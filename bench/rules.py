"""kube-proxy rule generation: N Services x 10 endpoints, seconds and peak memory per version, and
the real `iptables-restore` of the result in a lab namespace, side by side."""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

from kplab.kubeproxy import Cluster, GeneratedRules, KubeProxyConfig, Version, generate
from kplab.kubeproxy.objects import EndpointSlice, Node, Service, ServicePort, SliceEndpoint, SlicePort

TITLE = "rules: generation"
SIZES = (1_000, 10_000)
ENDPOINTS = 10


def cluster(services: int, endpoints: int = ENDPOINTS) -> Cluster:
    """`services` ClusterIP+NodePort Services in 10.96/12, each with `endpoints` pods in 10.244/14."""
    out = Cluster(nodes=[Node("node-a", (("InternalIP", "192.168.1.10"),))])
    for i in range(services):
        name, ip = f"svc-{i}", f"10.{96 + i // 65536}.{i // 256 % 256}.{i % 256}"
        port = ServicePort("http", "TCP", 80, 30000 + i % 2000 if i % 4 == 0 else 0)
        stype = "NodePort" if port.node_port else "ClusterIP"
        out.services.append(Service("bench", name, stype, (ip,), (port,)))
        eps = []
        for j in range(endpoints):
            n = i * endpoints + j
            eps.append(
                SliceEndpoint(
                    (f"10.{244 + n // 65536 // 256}.{n // 256 % 256}.{n % 256}",), node_name="node-a"
                )
            )
            if n // 65536 // 256 > 3:
                raise ValueError("too many endpoints for 10.244.0.0/14")
        out.slices.append(
            EndpointSlice("bench", f"{name}-1", name, "IPv4", tuple(eps), (SlicePort("http", "TCP", 8080),))
        )
    return out


def timed(objects: Cluster, version: Version, repeat: int = 1) -> tuple[GeneratedRules, float]:
    """The generated rules and the best of `repeat` wall-clock timings (restore text included)."""
    config = KubeProxyConfig(cluster_cidr="10.244.0.0/14")
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        rules = generate(objects, config=config, version=version, full_node=True)
        text = rules.restore_text
        best = min(best, time.perf_counter() - start)
        assert text.endswith("COMMIT\n")
    return rules, best


def peak_mib(objects: Cluster, version: Version) -> float:
    gc.collect()
    tracemalloc.start()
    rules, _ = timed(objects, version)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del rules
    return peak / 2**20


def restore_seconds(rules: GeneratedRules) -> str:
    if os.geteuid() != 0:
        return "n/a (needs root)"
    from kplab.lab.kprules import load
    from kplab.lab.netns import Lab

    with Lab("bench") as lab:
        return f"{load(lab.netns('kp'), rules):.2f}"


def run() -> str:
    rows = [
        "| services x endpoints | version | rules | generate (s) | peak (MiB) | iptables-restore (s) |",
        "|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        objects = cluster(size)
        for version in (Version.CURRENT, Version.V1_15):
            rules, seconds = timed(objects, version, repeat=3)
            count = sum(1 for line in rules.lines if line.startswith("-A "))
            mib = peak_mib(objects, version)
            rows.append(
                f"| {size:,} x {ENDPOINTS} | {version.value} | {count:,} | {seconds:.2f} | {mib:.0f} | "
                f"{restore_seconds(rules)} |"
            )
    return "\n".join(
        [
            "`python -m bench rules`: `kplab.kubeproxy.generate(..., full_node=True)` from in-memory",
            "objects (ClusterIP Services, every fourth with a NodePort; 10 endpoints each, so current",
            "kube-proxy's large-cluster mode drops the SVC/SEP comments), restore text included.",
            "Generation time is the best of 3 runs (the box is shared); peak memory by tracemalloc in",
            "another run. The last column is the real `iptables-restore` (nf_tables backend) of the",
            "same text into an empty lab namespace. Target: under 2 s for 10,000 Services.",
            "",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(run())
