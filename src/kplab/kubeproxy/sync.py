"""Repeated syncs of one kube-proxy, as `syncProxyRules` runs them over time.

Current kube-proxy (KEP-3453, MinimizeIPTablesRestore) rewrites, after a first full sync, only the
per-service chains (KUBE-SVC/SVL/EXT/FW/SEP) of services whose Service or endpoints changed; the
top-level chains are always rewritten; chains no longer used are flushed and deleted (`-X`). A
restore the kernel refuses (e.g. `-X` of a chain something still jumps to) changes nothing, counts
in `sync_proxy_rules_iptables_partial_restore_failures_total` and forces the next sync to be full.
v1.14/v1.15 rewrite everything on every sync and delete their stale chains the same way.

The node's nat table is modelled just enough to decide whether a restore succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.kubeproxy.api import GeneratedRules, pick_node
from kplab.kubeproxy.gen_current import generate_current
from kplab.kubeproxy.gen_legacy import generate_legacy
from kplab.kubeproxy.names import Version
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, NodeEnv
from kplab.kubeproxy.resolve import SvcPort, node_context, service_ports
from kplab.kubeproxy.savematch import split_words

BUILTIN_TARGETS = frozenset({"ACCEPT", "DROP", "RETURN", "REJECT", "MARK", "DNAT", "SNAT", "MASQUERADE"})


@dataclass(slots=True)
class NatTable:
    """The node's nat table: chain -> rules (the `-A` lines)."""

    chains: dict[str, list[str]] = field(default_factory=dict)

    def apply(self, restore: str) -> str | None:
        """Apply the nat part of a `--noflush` restore atomically; returns why it fails, or None."""
        chains = {name: list(rules) for name, rules in self.chains.items()}
        in_nat = False
        for line in restore.splitlines():
            if line.startswith("*"):
                in_nat = line == "*nat"
            elif not in_nat or line == "COMMIT":
                continue
            elif line.startswith(":"):
                chains[line[1:].split()[0]] = []
            elif line.startswith("-A "):
                chains.setdefault(line.split()[1], []).append(line)
            elif line.startswith("-X "):
                name = line.split()[1]
                if chains.get(name):
                    return f"-X {name}: chain is not empty"
                chains.pop(name, None)
        for rules in chains.values():
            for rule in rules:
                target = _target(rule)
                if target is not None and target not in BUILTIN_TARGETS and target not in chains:
                    return f"{rule}: no chain {target}"
        self.chains = chains
        return None


def _target(rule: str) -> str | None:
    words = split_words(rule)
    for i, word in enumerate(words[:-1]):
        if word in ("-j", "-g"):
            return words[i + 1]
    return None


def _service_key(sp: SvcPort) -> str:
    return sp.spn.partition(":")[0]


@dataclass(slots=True)
class SyncResult:
    rules: GeneratedRules
    full: bool
    error: str | None  # why the kernel refused the restore, or None


@dataclass(slots=True)
class Proxier:
    """One node's kube-proxy across syncs (`Proxier.syncProxyRules` with its remembered state)."""

    config: KubeProxyConfig
    env: NodeEnv
    version: Version = Version.CURRENT
    node_name: str | None = None
    nat: NatTable = field(default_factory=NatTable)
    need_full_sync: bool = True
    partial_restore_failures: int = 0
    _services: dict[str, tuple[object, ...]] = field(default_factory=dict)
    _endpoints: dict[str, tuple[object, ...]] = field(default_factory=dict)

    def sync(self, cluster: Cluster) -> SyncResult:
        node, name = pick_node(cluster, self.config, self.node_name)
        ctx = node_context(self.version, self.config, self.env, node, name)
        ports = service_ports(cluster, ctx)
        services, endpoints = fingerprints(ports)
        changed = {
            k for k in services.keys() | self._services.keys() if services.get(k) != self._services.get(k)
        }
        changed |= {
            k for k in endpoints.keys() | self._endpoints.keys() if endpoints.get(k) != self._endpoints.get(k)
        }
        self._services, self._endpoints = services, endpoints
        full = self.need_full_sync or self.version.legacy
        existing = set(self.nat.chains)
        if self.version.legacy:
            writer = generate_legacy(ctx, ports, existing_nat_chains=existing)
        else:
            writer, _ = generate_current(
                ctx, ports, changed=None if full else changed, existing_nat_chains=existing
            )
        lines = writer.lines()
        rules = GeneratedRules(self.version, lines.texts, lines.origins, list(cluster.notes), False)
        error = self.nat.apply(rules.restore_text)
        if error is not None and not full:
            self.partial_restore_failures += 1
        self.need_full_sync = error is not None
        return SyncResult(rules, full, error)


def fingerprints(
    ports: list[SvcPort],
) -> tuple[dict[str, tuple[object, ...]], dict[str, tuple[object, ...]]]:
    """Per namespace/name: its service ports' settings, and its endpoints (absent when none)."""
    services: dict[str, list[object]] = {}
    endpoints: dict[str, list[object]] = {}
    for sp in ports:
        key = _service_key(sp)
        settings = (sp.spn, sp.protocol, sp.port, sp.cluster_ip, sp.node_port, sp.hc_node_port, sp.affinity_s)
        addresses = (
            tuple(sp.external_ips),
            tuple(sp.lb_ips),
            tuple(sp.source_ranges),
            sp.etp_local,
            sp.itp_local,
        )
        services.setdefault(key, []).append((settings, addresses))
        if sp.endpoints:
            endpoints.setdefault(key, []).append((sp.spn, sp.protocol, tuple(sp.endpoints)))
    return {k: tuple(v) for k, v in services.items()}, {k: tuple(v) for k, v in endpoints.items()}
