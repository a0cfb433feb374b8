"""One service port's elements and chains (the loop body of `syncProxyRules` in
pkg/proxy/nftables/proxier.go, and `writeServiceToEndpointRules`)."""

from __future__ import annotations

from dataclasses import dataclass

from kplab.kubeproxy.endpoints import EndpointInfo, categorize
from kplab.kubeproxy.ipaddr import in_cidr
from kplab.kubeproxy.nftmode.context import NftContext
from kplab.kubeproxy.nftmode.names import MARK_MASQ, REJECT_CHAIN, dnat_target, endpoint_base, service_base
from kplab.kubeproxy.nftmode.setup import Storages, ensure_chain
from kplab.kubeproxy.nftmode.table import Transaction
from kplab.kubeproxy.resolve import SvcPort


@dataclass(frozen=True, slots=True)
class Names:
    namespace: str
    name: str
    port_name: str

    @staticmethod
    def of(sp: SvcPort) -> Names:
        namespace, _, rest = sp.spn.partition("/")
        name, _, port = rest.partition(":")
        return Names(namespace, name, port)

    def base(self, sp: SvcPort) -> str:
        return service_base(self.namespace, self.name, sp.protocol, self.port_name)

    def endpoint(self, sp: SvcPort, ep: EndpointInfo) -> str:
        return endpoint_base(self.namespace, self.name, sp.protocol, self.port_name, ep.ip, ep.port)


@dataclass(slots=True)
class Active:
    """Per-service chains and affinity sets this sync keeps (`activeChains`, `activeAffinitySets`)."""

    chains: set[str]
    affinity_sets: set[str]


def write_service_port(
    tx: Transaction, ctx: NftContext, sp: SvcPort, st: Storages, active: Active, skip: bool
) -> None:
    ipx = ctx.family.nft
    proto = sp.protocol
    cat = categorize(
        sp.endpoints, sp.uses_cluster_endpoints, sp.uses_local_endpoints, ctx.base.node_name, ctx.base.zone
    )
    names = Names.of(sp)
    base = names.base(sp)
    ep_base = {ep.addr: names.endpoint(sp, ep) for ep in cat.reachable}
    for ep in cat.reachable:
        ensure_chain(tx, "endpoint-" + ep_base[ep.addr], active.chains, skip)
        if sp.affinity_s:
            active.affinity_sets.add("affinity-" + ep_base[ep.addr])
    cluster_chain, local_chain = "service-" + base, "local-" + base
    uses_cluster = bool(cat.cluster) and sp.uses_cluster_endpoints
    if uses_cluster:
        ensure_chain(tx, cluster_chain, active.chains, skip)
    uses_local = bool(cat.local) and sp.uses_local_endpoints
    if uses_local:
        ensure_chain(tx, local_chain, active.chains, skip)
    has_internal = cat.has_any and not (sp.itp_local and not cat.local)
    internal_chain = local_chain if sp.itp_local else cluster_chain
    has_external = cat.has_any and not (sp.etp_local and not cat.local)
    external_policy = local_chain if sp.etp_local else cluster_chain
    external_chain = "external-" + base
    uses_external = cat.has_any and sp.externally_accessible
    if uses_external:
        ensure_chain(tx, external_chain, active.chains, skip)
    internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    if cat.has_any:
        internal_verdict = "" if has_internal else "drop"
        external_verdict = "" if has_external else "drop"

    spn = sp.spn
    cip = f"{sp.cluster_ip} . {proto} . {sp.port}"
    st.cluster_ips.ensure(tx, sp.cluster_ip)
    if has_internal:
        st.service_ips.ensure(tx, cip, f"goto {internal_chain}")
    else:
        st.no_endpoint_services.ensure(tx, cip, internal_verdict, spn)
    for ip in sp.external_ips:
        key = f"{ip} . {proto} . {sp.port}"
        if cat.has_any:
            st.service_ips.ensure(tx, key, f"goto {external_chain}")
        if not has_external:
            st.no_endpoint_services.ensure(tx, key, external_verdict, spn)
    uses_fw = bool(sp.lb_ips) and bool(sp.source_ranges)
    fw_chain = "firewall-" + base
    if uses_fw:
        ensure_chain(tx, fw_chain, active.chains, skip)
    for ip in sp.lb_ips:
        key = f"{ip} . {proto} . {sp.port}"
        if cat.has_any:
            st.service_ips.ensure(tx, key, f"goto {external_chain}")
        if uses_fw:
            st.firewall_ips.ensure(tx, key, f"goto {fw_chain}")
    if not has_external:
        for ip in sp.lb_ips:
            st.no_endpoint_services.ensure(tx, f"{ip} . {proto} . {sp.port}", external_verdict, spn)
    if sp.node_port:
        key = f"{proto} . {sp.node_port}"
        if cat.has_any:
            st.service_nodeports.ensure(tx, key, f"goto {external_chain}")
        if not has_external:
            st.no_endpoint_nodeports.ensure(tx, key, external_verdict, spn)
    if skip:
        return

    if has_internal:
        dport = f" {proto} dport {sp.port}" if ctx.version.masquerade_port else ""
        if ctx.masquerade_all:
            tx.rule(internal_chain, f"{ipx} daddr {sp.cluster_ip}{dport} jump {MARK_MASQ}")
        elif ctx.if_not_local is not None:
            tx.rule(internal_chain, f"{ipx} daddr {sp.cluster_ip}{dport} {ctx.if_not_local} jump {MARK_MASQ}")
    if uses_external:
        if not sp.etp_local:
            tx.rule(external_chain, f"jump {MARK_MASQ}")
        else:
            if ctx.if_local is not None:
                tx.rule(external_chain, f"{ctx.if_local} goto {cluster_chain}", "short-circuit pod traffic")
            tx.rule(external_chain, f"fib saddr type local jump {MARK_MASQ}", "masquerade local traffic")
            tx.rule(
                external_chain, f"fib saddr type local goto {cluster_chain}", "short-circuit local traffic"
            )
        if has_external:
            tx.rule(external_chain, f"goto {external_policy}")
    if uses_fw:
        sources = list(sp.source_ranges)
        if any(in_cidr(ctx.node_ip, c) for c in sp.source_ranges):
            sources += sp.lb_ips
        tx.rule(fw_chain, f"{ipx} saddr != {{ {' , '.join(sources)} }} drop")
    if sp.affinity_s:
        for ep in cat.reachable:
            spec = f"{{ type {ctx.family.addr_type} ; flags dynamic,timeout ; timeout {sp.affinity_s}s ; }}"
            tx.add("set", "affinity-" + ep_base[ep.addr], spec)
    if uses_cluster:
        _endpoint_rules(tx, ctx, sp, cluster_chain, cat.cluster, ep_base)
    if uses_local:
        _endpoint_rules(tx, ctx, sp, local_chain, cat.local, ep_base)
    for ep in cat.reachable:
        chain = "endpoint-" + ep_base[ep.addr]
        tx.rule(chain, f"{ipx} saddr {ep.ip} jump {MARK_MASQ}")
        if sp.affinity_s:
            tx.rule(chain, f"update @affinity-{ep_base[ep.addr]} {{ {ipx} saddr }}")
        tx.rule(chain, f"meta l4proto {proto} dnat to {dnat_target(ep.ip, ep.port)}")


def _endpoint_rules(
    tx: Transaction,
    ctx: NftContext,
    sp: SvcPort,
    chain: str,
    eps: list[EndpointInfo],
    ep_base: dict[str, str],
) -> None:
    if sp.affinity_s:
        for ep in eps:
            b = ep_base[ep.addr]
            tx.rule(chain, f"{ctx.family.nft} saddr @affinity-{b} goto endpoint-{b}")
    branches = " , ".join(f"{i} : goto endpoint-{ep_base[ep.addr]}" for i, ep in enumerate(eps))
    tx.rule(chain, f"numgen random mod {len(eps)} vmap {{ {branches} }}")
