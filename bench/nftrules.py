"""kube-proxy's nftables mode: generating its table for N Services x 10 endpoints (the objects of
bench/rules.py), seconds and peak memory, and the real `nft -f` of the result in a lab namespace."""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

from bench.rules import ENDPOINTS, SIZES, cluster
from kplab.kubeproxy import Cluster, KubeProxyConfig
from kplab.kubeproxy.nftmode.api import GeneratedNft, generate_nft

TITLE = "rules: nftables mode generation"
CONFIG = KubeProxyConfig(mode="nftables", cluster_cidr="10.244.0.0/14", cluster_cidrs=("10.244.0.0/14",))


def timed(objects: Cluster, repeat: int = 1) -> tuple[GeneratedNft, float]:
    best = float("inf")
    generated = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        generated = generate_nft(objects, config=CONFIG)
        text = generated.text
        best = min(best, time.perf_counter() - start)
        assert text.startswith("add table ip kube-proxy")
    assert generated is not None
    return generated, best


def peak_mib(objects: Cluster) -> float:
    gc.collect()
    tracemalloc.start()
    generated, _ = timed(objects)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del generated
    return peak / 2**20


def load_seconds(generated: GeneratedNft) -> str:
    if os.geteuid() != 0:
        return "n/a (needs root)"
    from kplab.lab.kpnft import load
    from kplab.lab.netns import Lab

    with Lab("bench") as lab:
        ns = lab.netns("kp")
        start = time.perf_counter()
        load(ns, generated.text, timeout=1800)
        return f"{time.perf_counter() - start:.2f}"


def run() -> str:
    rows = [
        "| services x endpoints | rules | set/map elements | generate (s) | peak (MiB) | nft -f (s) |",
        "|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        objects = cluster(size)
        generated, seconds = timed(objects, repeat=3)
        lines = generated.lines()
        rules = sum(1 for line in lines if line.startswith("add rule "))
        elements = sum(1 for line in lines if line.startswith("add element "))
        mib = peak_mib(objects)
        rows.append(
            f"| {size:,} x {ENDPOINTS} | {rules:,} | {elements:,} | {seconds:.2f} | {mib:.0f} | "
            f"{load_seconds(generated)} |"
        )
    return "\n".join(
        [
            "`python -m bench nftrules`: `kplab.kubeproxy.nftmode.api.generate_nft` (the first, full sync",
            "of the IPv4 proxier, applied to the table model) from the in-memory objects of",
            "`bench rules`, the `nft -f` text included. Generation time is the best of 3 runs (the box",
            "is shared); peak memory by tracemalloc in another run. The last column is the real",
            "`nft -f` of the same text into an empty lab namespace.",
            "",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(run())
