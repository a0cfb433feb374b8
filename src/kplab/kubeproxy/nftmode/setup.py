"""`setupNFTables`: the table, base chains, top-level chains and their rules, and the sets and
maps every sync starts from (written on a full sync only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.kubeproxy.nftmode.context import NftContext
from kplab.kubeproxy.nftmode.layout import base_chains, jumps
from kplab.kubeproxy.nftmode.names import (
    CLUSTER_IPS,
    CLUSTER_IPS_CHECK,
    FIREWALL_CHECK,
    FIREWALL_IPS,
    MARK_MASQ,
    MASQUERADING,
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NODEPORT_ENDPOINTS_CHECK,
    NODEPORT_IPS,
    REJECT_CHAIN,
    SERVICE_ENDPOINTS_CHECK,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    SERVICES,
)
from kplab.kubeproxy.nftmode.table import TABLE_COMMENT, Transaction, go_quote

TUPLE = "inet_proto . inet_service"


@dataclass(slots=True)
class ElementStorage:
    """`nftElementStorage`: what a set or map holds, so a sync adds and deletes only differences."""

    kind: str  # set or map
    name: str
    elements: dict[str, str] = field(default_factory=dict)  # key -> value
    leftover: set[str] = field(default_factory=set)

    def reset(self, tx: Transaction) -> None:
        self.elements.clear()
        tx.flush(self.kind, self.name)
        self.leftover = set()

    def ensure(self, tx: Transaction, key: str, value: str = "", comment: str | None = None) -> None:
        existing = self.elements.get(key)
        if existing is None:
            tx.element(self.name, key, value, comment)
            self.elements[key] = value
            return
        if existing != value:
            tx.delete("element", self.name, key)
            tx.element(self.name, key, value, comment)
            self.elements[key] = value
        self.leftover.discard(key)

    def cleanup(self, tx: Transaction) -> None:
        for key in sorted(self.leftover):
            tx.delete("element", self.name, key)
            del self.elements[key]
        self.leftover = set(self.elements)


@dataclass(slots=True)
class Storages:
    cluster_ips: ElementStorage = field(default_factory=lambda: ElementStorage("set", CLUSTER_IPS))
    service_ips: ElementStorage = field(default_factory=lambda: ElementStorage("map", SERVICE_IPS))
    firewall_ips: ElementStorage = field(default_factory=lambda: ElementStorage("map", FIREWALL_IPS))
    no_endpoint_services: ElementStorage = field(
        default_factory=lambda: ElementStorage("map", NO_ENDPOINT_SERVICES)
    )
    no_endpoint_nodeports: ElementStorage = field(
        default_factory=lambda: ElementStorage("map", NO_ENDPOINT_NODEPORTS)
    )
    service_nodeports: ElementStorage = field(
        default_factory=lambda: ElementStorage("map", SERVICE_NODEPORTS)
    )

    def all(self) -> tuple[ElementStorage, ...]:
        return (
            self.cluster_ips,
            self.service_ips,
            self.firewall_ips,
            self.no_endpoint_services,
            self.no_endpoint_nodeports,
            self.service_nodeports,
        )


def ensure_chain(tx: Transaction, chain: str, created: set[str], skip: bool = False) -> None:
    """`ensureChain`: add and flush once per transaction (only noted when `skip`)."""
    if chain in created:
        return
    created.add(chain)
    if not skip:
        tx.add("chain", chain)
        tx.flush("chain", chain)


def _spec(*parts: str) -> str:
    return "{ " + " ; ".join(parts) + " ; }"


def setup(tx: Transaction, ctx: NftContext, first: bool, storages: Storages) -> list[str]:
    """The full-sync preamble; returns the notes (none so far)."""
    fam = ctx.family
    ipx, addr = fam.nft, fam.addr_type
    tx.add("table", "", _spec(f"comment {go_quote(TABLE_COMMENT)}"))
    chains = base_chains(ctx.version)
    if first:  # re-create base chains once, so a priority change of an upgrade applies
        for bc in chains:
            tx.add("chain", bc.name)
            tx.delete("chain", bc.name)
    for bc in chains:
        tx.add("chain", bc.name, bc.spec)
        tx.flush("chain", bc.name)
    created: set[str] = set()
    for jump in jumps(ctx.version):
        ensure_chain(tx, jump.target, created)
        tx.rule(jump.source, f"{jump.match} jump {jump.target}".strip())
    for chain in (SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ):
        ensure_chain(tx, chain, created)
    mark = ctx.mark
    tx.rule(MARK_MASQ, f"mark set mark or {mark}")
    tx.rule(MASQUERADING, f"mark and {mark} == 0 return")
    tx.rule(MASQUERADING, f"mark set mark xor {mark}")
    tx.rule(MASQUERADING, "masquerade fully-random")

    tx.add("set", CLUSTER_IPS, _spec(f"type {addr}", f"comment {go_quote('Active ClusterIPs')}"))
    tx.rule(
        CLUSTER_IPS_CHECK,
        f"{ipx} daddr @{CLUSTER_IPS} reject",
        "Reject traffic to invalid ports of ClusterIPs",
    )
    if ctx.service_cidrs:
        cidrs = ",".join(ctx.service_cidrs)
        tx.rule(
            CLUSTER_IPS_CHECK, f"{ipx} daddr {{ {cidrs} }} drop", "Drop traffic to unallocated ClusterIPs"
        )

    comment = go_quote("IPs that accept NodePort traffic")
    tx.add("set", NODEPORT_IPS, _spec(f"type {addr}", f"comment {comment}"))
    if ctx.node_port_match_all:
        tx.delete("set", NODEPORT_IPS)
    else:
        tx.flush("set", NODEPORT_IPS)
        for ip in ctx.node_port_ips:
            tx.element(NODEPORT_IPS, ip)

    comment = go_quote("vmap to drop or reject packets to services with no endpoints")
    tx.add("map", NO_ENDPOINT_SERVICES, _spec(f"type {addr} . {TUPLE} : verdict", f"comment {comment}"))
    comment = go_quote("vmap to drop or reject packets to service nodeports with no endpoints")
    tx.add("map", NO_ENDPOINT_NODEPORTS, _spec(f"type {TUPLE} : verdict", f"comment {comment}"))
    comment = go_quote("helper for @no-endpoint-services / @no-endpoint-nodeports")
    tx.add("chain", REJECT_CHAIN, _spec(f"comment {comment}"))
    tx.flush("chain", REJECT_CHAIN)
    tx.rule(REJECT_CHAIN, "reject")
    tx.rule(SERVICE_ENDPOINTS_CHECK, f"{ipx} daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}")
    if ctx.node_port_match_all:
        rule = f"{fam.no_localhost} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
    else:
        rule = f"{ipx} daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
    tx.rule(NODEPORT_ENDPOINTS_CHECK, rule)

    comment = go_quote("destinations that are subject to LoadBalancerSourceRanges")
    tx.add("map", FIREWALL_IPS, _spec(f"type {addr} . {TUPLE} : verdict", f"comment {comment}"))
    ensure_chain(tx, FIREWALL_CHECK, created)
    tx.rule(FIREWALL_CHECK, f"{ipx} daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}")

    comment = go_quote("ClusterIP, ExternalIP and LoadBalancer IP traffic")
    tx.add("map", SERVICE_IPS, _spec(f"type {addr} . {TUPLE} : verdict", f"comment {comment}"))
    tx.add(
        "map", SERVICE_NODEPORTS, _spec(f"type {TUPLE} : verdict", f"comment {go_quote('NodePort traffic')}")
    )
    tx.rule(SERVICES, f"{ipx} daddr . meta l4proto . th dport vmap @{SERVICE_IPS}")
    if ctx.node_port_match_all:
        rule = f"fib daddr type local {fam.no_localhost} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
    else:
        rule = f"{ipx} daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
    tx.rule(SERVICES, rule)
    for storage in storages.all():
        storage.reset(tx)
    return []
