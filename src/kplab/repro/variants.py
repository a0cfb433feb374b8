"""The four variants of one workload that `kplab repro` runs side by side, and what each measures.

- `as_is`: the scenario as written (the blog's world: kube-proxy 1.14, kernel 5.4);
- `control`: the same downloads straight to the backend pods' own addresses (no Service NAT),
  as between plain VMs;
- `drop_invalid`: kube-proxy 1.15's rules (`-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP`);
  in nftables mode, which has no such rule, the operator's own table (`kplab.scenario.operator`);
- `be_liberal`: `net.netfilter.nf_conntrack_tcp_be_liberal=1` on every node.

Same seed for all four: the differences come from the variant alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kplab.net.cluster import EmulatedCluster
from kplab.repro.observation import Observation
from kplab.scenario.schema import Scenario

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
VARIANTS = ("as_is", "control", "drop_invalid", "be_liberal")
# `--fix` on the command line (kplab repro, kplab lab repro): one variant instead of all four.
FIXES = {"none": "as_is", "drop-invalid": "drop_invalid", "be-liberal": "be_liberal"}


def with_be_liberal(s: Scenario, value: int) -> Scenario:
    """`nf_conntrack_tcp_be_liberal=value` on every node (kube-proxy reads it too, at start)."""
    nodes = tuple(replace(n, sysctls={**n.sysctls, BE_LIBERAL: value}) for n in s.nodes)
    return replace(s, sysctls={**s.sysctls, BE_LIBERAL: value}, nodes=nodes)


def _drop_invalid(s: Scenario) -> Scenario:
    if s.kube_proxy_mode == "nftables":
        return replace(with_be_liberal(s, 0), operator_drop_invalid=True)
    # 1.14 -> 1.15 adds the rule; 1.15 and current (with be_liberal off) already write it.
    version = "1.15" if s.kube_proxy_version == "1.14" else s.kube_proxy_version
    return replace(with_be_liberal(s, 0), kube_proxy_version=version)


def _be_liberal(s: Scenario) -> Scenario:
    return with_be_liberal(s, 1)


TRANSFORMS: dict[str, Callable[[Scenario], Scenario]] = {
    "as_is": lambda s: s,
    "control": lambda s: replace(s, workload=replace(s.workload, target="pod")),
    "drop_invalid": _drop_invalid,
    "be_liberal": _be_liberal,
}


def variant(s: Scenario, name: str) -> Scenario:
    return TRANSFORMS[name](s)


def measure(c: EmulatedCluster, summary: dict[str, Any]) -> Observation:
    """What the emulated run showed (the per-variant object of `kplab repro -o json`)."""
    invalid: dict[str, int] = {}
    for node in c.nodes.values():
        for reason, n in node.stats.invalid_by_reason.items():
            invalid[reason] = invalid.get(reason, 0) + n
    return Observation.from_outcomes(
        summary["outcomes"],
        # Server connections a RST killed (the stack's view; the file server may have closed already).
        server_resets=sum(s.stats.errors.get("ECONNRESET", 0) for s in c.servers.values()),
        client_rsts=sum(c.pods[p].tcp.counters.get("TcpOutRsts", 0) for p in set(c.workloads)),
        invalid_by_reason=invalid,
        unnated_escapes=sum(n.stats.unnated_escapes for n in c.nodes.values()),
        packets=summary["packets"],
        sim_seconds=summary["sim_seconds"],
    )
