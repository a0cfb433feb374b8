"""Cluster build: a scenario with N nodes and S ClusterIP Services (2 endpoints each) read from YAML,
built into an emulated cluster (kube-proxy rules generated, parsed and compiled, shared by the nodes
that hold the same rules) and run with one small download; time and peak RSS, compiled and pure."""

from __future__ import annotations

import time

from bench.child import call

TITLE = "cluster build (issue 11)"
SIZES = ((10, 1_000), (10, 10_000), (100, 1_000), (100, 10_000))
TARGET = (100, 10_000)
TARGET_S = 30.0
TARGET_BYTES = 2 * 1024**3


def scenario_text(nodes: int, services: int) -> str:
    """Node i holds two server pods of group i; Service k selects group k % nodes (two endpoints, on
    nodes g and g+1); one client pod downloads 100 kB through Service 0."""
    lines = ["name: build", "duration: 10s", 'kernel: "6.1"', "kube_proxy_version: current", "nodes:"]
    for i in range(nodes):
        net = f"{i // 200}.{i % 200}"
        lines.append(f"  - {{name: node-{i}, ip: 172.16.{i // 200}.{i % 200 + 1}, pod_cidr: 10.{net}.0/24}}")
    lines.append("pods:")
    lines.append("  - {name: client, node: node-0, ip: 10.0.0.250, labels: {role: client}}")
    for i in range(nodes):
        for j, host in enumerate((i, (i + 1) % nodes)):
            addr = f"10.{host // 200}.{host % 200}.{2 + 2 * (i % 100) + j}"
            lines.append(f"  - {{name: srv-{i}-{j}, node: node-{host}, ip: {addr}, labels: {{grp: g{i}}}}}")
    lines.append("services:")
    for k in range(services):
        vip = f"192.168.{k // 250}.{k % 250 + 1}"
        lines.append(f"  - {{name: svc-{k}, cluster_ip: {vip}, port: 80, selector: {{grp: g{k % nodes}}}}}")
    lines += [
        "workload:",
        "  service: default/svc-0",
        "  server_selector: {grp: g0}",
        "  client_selector: {role: client}",
        "  file_size: 100kB",
        "  parallel: 1",
        "  downloads: 1",
    ]
    return "\n".join(lines) + "\n"


def measure(nodes: int, services: int) -> dict[str, object]:
    """In this process: (build s, run s, total s, outcomes). Called in a child by `call`."""
    from kplab.net.cluster import build
    from kplab.net.summary import summary
    from kplab.scenario.load import parse

    text = scenario_text(nodes, services)
    start, start_cpu = time.perf_counter(), time.process_time()
    s = parse(text, "<bench>")
    cluster = build(s)
    built = time.perf_counter()
    cluster.run()
    total, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "build_s": built - start,
        "total_s": total,
        "total_cpu_s": cpu,
        "outcomes": summary(cluster)["outcomes"],
    }


def run() -> str:
    lines = [
        "`python -m bench cluster_build`: a scenario of N nodes and S ClusterIP Services, 2 endpoints each "
        "(two server pods per node; Service k selects the pods of node k mod N and its neighbour), parsed "
        "from YAML, built (kube-proxy `current` rules with `--full-node`, compiled once per distinct ruleset "
        "and shared), then run with one 100 kB download through a Service. Each cell is one fresh process "
        "(wall and CPU seconds; peak RSS of that process). Building is not on the compiled path (rule "
        "generation and compilation run as Python either way), so compiled and pure are close here.",
        "",
        "| nodes | Services | build s | build + run s | CPU s | peak RSS | pure: build + run s | pure: CPU s "
        "| pure: peak RSS | pure CPU / compiled CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    target_row: tuple[float, int] | None = None
    for nodes, services in SIZES:
        native, rss = call("bench.cluster_build", "measure", nodes, services)
        pure, pure_rss = call("bench.cluster_build", "measure", nodes, services, pure=True)
        for got in (native, pure):
            assert got["outcomes"] == {"completed": 1}, got
        mib, pure_mib = rss / 2**20, pure_rss / 2**20
        ratio = pure["total_cpu_s"] / native["total_cpu_s"]
        lines.append(
            f"| {nodes} | {services:,} | {native['build_s']:.1f} | {native['total_s']:.1f} "
            f"| {native['total_cpu_s']:.1f} | {mib:,.0f} MiB | {pure['total_s']:.1f} "
            f"| {pure['total_cpu_s']:.1f} | {pure_mib:,.0f} MiB | {ratio:.2f}x |"
        )
        if (nodes, services) == TARGET:
            target_row = (native["total_s"], rss)
    assert target_row is not None
    total, rss = target_row
    ok = total <= TARGET_S and rss <= TARGET_BYTES
    lines += [
        "",
        f"Target: 100 nodes x 10,000 Services built and run in <= {TARGET_S:.0f} s and <= 2 GiB: "
        f"**{'met' if ok else 'NOT met'}** ({total:.1f} s, {rss / 2**20:,.0f} MiB, compiled).",
    ]
    return "\n".join(lines)
