"""One IP family's nftables proxier across syncs (`syncProxyRules` with its remembered state):
the first sync is full (setupNFTables, every element re-added), later ones partial (only changed
services' chains rewritten, elements diffed). Per-service chains no longer used are flushed and
deleted, in a transaction of their own, by the first sync at least 1 s later (kernels before 6.2
cannot delete a map element and the chain it points to in one transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.kubeproxy.nftmode.context import Family, NftContext, nft_context
from kplab.kubeproxy.nftmode.names import NftVersion, is_service_chain
from kplab.kubeproxy.nftmode.service import Active, write_service_port
from kplab.kubeproxy.nftmode.setup import Storages, setup
from kplab.kubeproxy.nftmode.table import Table, Transaction
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, Node, NodeEnv
from kplab.kubeproxy.resolve import service_ports
from kplab.kubeproxy.sync import fingerprints


@dataclass(slots=True)
class NftSync:
    """What one sync did: its transaction, and the stale-chain deletion before it (if any)."""

    tx: Transaction
    cleanup: Transaction | None
    full: bool
    notes: list[str]

    @property
    def operations(self) -> int:
        """`LastTransaction.NumOperations()`."""
        return len(self.tx.ops)


@dataclass(slots=True)
class NftProxier:
    version: NftVersion
    family: Family
    config: KubeProxyConfig
    env: NodeEnv
    table: Table = field(init=False)
    storages: Storages = field(default_factory=Storages)
    need_full_sync: bool = True
    flushed: bool = False
    stale_chains: dict[str, float] = field(default_factory=dict)  # chain -> when it went stale (s)
    _services: dict[str, tuple[object, ...]] = field(default_factory=dict)
    _endpoints: dict[str, tuple[object, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = Table(self.family.nft)

    def context(self, cluster: Cluster, node: Node | None, node_name: str) -> tuple[NftContext, list[str]]:
        return nft_context(self.version, self.family, cluster, self.config, self.env, node, node_name)

    def sync(self, cluster: Cluster, node: Node | None, node_name: str, now: float = 0.0) -> NftSync:
        ctx, notes = self.context(cluster, node, node_name)
        ports = service_ports(cluster, ctx.base, self.family.number)
        services, endpoints = fingerprints(ports)
        changed = {
            k for k in services.keys() | self._services.keys() if services.get(k) != self._services.get(k)
        }
        changed |= {
            k for k in endpoints.keys() | self._endpoints.keys() if endpoints.get(k) != self._endpoints.get(k)
        }
        self._services, self._endpoints = services, endpoints

        cleanup = None
        old = sorted(c for c, t in self.stale_chains.items() if t < now - 1.0)
        if old:
            cleanup = Transaction(self.family.nft)
            for chain in old:
                cleanup.delete("chain", chain)
                del self.stale_chains[chain]
            self.table.apply(cleanup)

        full = self.need_full_sync
        tx = Transaction(self.family.nft)
        if full:
            notes += setup(tx, ctx, not self.flushed, self.storages)
            self.flushed = True
        active = Active(set(), set())
        for sp in ports:
            skip = not full and sp.spn.partition(":")[0] not in changed
            write_service_port(tx, ctx, sp, self.storages, active, skip)
        for chain in self.table.names("chain"):
            if is_service_chain(chain):
                if chain not in active.chains:
                    tx.flush("chain", chain)
                    self.stale_chains[chain] = now
                else:
                    self.stale_chains.pop(chain, None)
        for name in self.table.names("set"):
            if name.startswith("affinity-") and name not in active.affinity_sets:
                tx.delete("set", name)
        for storage in self.storages.all():
            storage.cleanup(tx)
        self.table.apply(tx)
        self.need_full_sync = False
        return NftSync(tx, cleanup, full, notes)
