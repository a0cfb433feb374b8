"""The restore input of current kube-proxy (~v1.33, `syncProxyRules` in pkg/proxy/iptables/proxier.go),
one small function per chain family. Service ports come in a fixed order (kube-proxy iterates a Go
map, so its own order varies from sync to sync; the canonical sort makes them comparable)."""

from __future__ import annotations

from dataclasses import dataclass

from kplab.kubeproxy.endpoints import Categorized, EndpointInfo, categorize
from kplab.kubeproxy.gen_toplevel import (
    NFACCT_LOCALHOST_NP,
    write_forward,
    write_localnet_firewall,
    write_nodeports_jump,
    write_postrouting,
    write_top_chains,
)
from kplab.kubeproxy.ipaddr import in_cidr
from kplab.kubeproxy.names import SERVICE_CHAIN_PREFIXES, port_proto_hash, sep_chain
from kplab.kubeproxy.resolve import NodeContext, SvcPort
from kplab.kubeproxy.writer import Buffer, Discard, RestoreWriter, ServiceSink, chain_line, q


def probability(n: int) -> str:
    """`computeProbability`: `fmt.Sprintf("%0.10f", 1.0/float64(n))`."""
    return f"{1.0 / n:0.10f}"


@dataclass(slots=True)
class Plan:
    """The per-service-port decisions at the top of kube-proxy's loop body."""

    cat: Categorized
    internal_chain: str
    external_policy_chain: str
    ext: str
    lb_target: str
    uses_fw: bool
    uses_ext: bool
    has_internal: bool
    has_external: bool
    internal_filter: tuple[str, str] | None  # (target, comment)
    external_filter: tuple[str, str] | None
    svc: str
    svl: str


def plan(sp: SvcPort, ctx: NodeContext) -> Plan:
    cat = categorize(
        sp.endpoints, sp.uses_cluster_endpoints, sp.uses_local_endpoints, ctx.node_name, ctx.zone
    )
    h = port_proto_hash(sp.spn, sp.protocol)  # KUBE-SVC/SVL/EXT/FW share it
    svc, svl, ext = "KUBE-SVC-" + h, "KUBE-SVL-" + h, "KUBE-EXT-" + h
    has_internal = cat.has_any and not (sp.itp_local and not cat.local)
    has_external = cat.has_any and not (sp.etp_local and not cat.local)
    uses_fw = cat.has_any and bool(sp.lb_ips) and bool(sp.source_ranges)
    internal_filter = external_filter = None
    if not cat.has_any:
        internal_filter = external_filter = ("REJECT", q(f"{sp.spn} has no endpoints"))
    else:
        if not has_internal:
            internal_filter = ("DROP", q(f"{sp.spn} has no local endpoints"))
        if not has_external:
            external_filter = ("DROP", q(f"{sp.spn} has no local endpoints"))
    return Plan(
        cat=cat,
        internal_chain=svl if sp.itp_local else svc,
        external_policy_chain=svl if sp.etp_local else svc,
        ext=ext,
        lb_target="KUBE-FW-" + h if uses_fw else ext,
        svc=svc,
        svl=svl,
        uses_fw=uses_fw,
        uses_ext=cat.has_any and sp.externally_accessible,
        has_internal=has_internal,
        has_external=has_external,
        internal_filter=internal_filter,
        external_filter=external_filter,
    )


def _proto(sp: SvcPort) -> list[str]:
    return ["-m", sp.protocol, "-p", sp.protocol]


def write_service_port(
    w: RestoreWriter, ctx: NodeContext, sp: SvcPort, sink: ServiceSink, large_cluster: bool
) -> None:
    p = plan(sp, ctx)
    write_cluster_ip(w, sp, p)
    write_external_ips(w, sp, p)
    write_load_balancer(w, sp, p)
    write_node_port(w, ctx, sp, p)
    write_health_check(w, sp)
    write_internal_masquerade(sink, ctx, sp, p)
    write_ext_chain(sink, ctx, sp, p)
    write_fw_chain(sink, ctx, sp, p)
    comments = not large_cluster
    seps = {ep.addr: sep_chain(sp.spn, sp.protocol, ep.addr) for ep in sp.endpoints}
    if p.cat.cluster and sp.uses_cluster_endpoints:
        sink.chain(p.svc)
        write_policy_chain(sink.nat_rules, sp, p.svc, p.cat.cluster, comments, seps)
    if p.cat.local and sp.uses_local_endpoints:
        sink.chain(p.svl)
        write_policy_chain(sink.nat_rules, sp, p.svl, p.cat.local, comments, seps)
    for ep in p.cat.reachable:
        write_endpoint_chain(sink, sp, ep, comments, seps[ep.addr])


def write_cluster_ip(w: RestoreWriter, sp: SvcPort, p: Plan) -> None:
    dest = ["-d", sp.cluster_ip, "--dport", str(sp.port)]
    if p.has_internal:
        comment = ["-m", "comment", "--comment", q(f"{sp.spn} cluster IP")]
        w.nat_rules.write(
            ["-A", "KUBE-SERVICES", *comment, *_proto(sp), *dest, "-j", p.internal_chain], sp.origin
        )
    elif p.internal_filter is not None:
        target, comment_text = p.internal_filter
        comment = ["-m", "comment", "--comment", comment_text]
        w.filter_rules.write(["-A", "KUBE-SERVICES", *comment, *_proto(sp), *dest, "-j", target], sp.origin)


def _external_filter(w: RestoreWriter, sp: SvcPort, p: Plan, chain: str, match: list[str]) -> None:
    assert p.external_filter is not None
    target, comment = p.external_filter
    w.filter_rules.write(
        ["-A", chain, "-m", "comment", "--comment", comment, *match, "-j", target], sp.origin
    )


def write_external_ips(w: RestoreWriter, sp: SvcPort, p: Plan) -> None:
    for ip in sp.external_ips:
        dest = [*_proto(sp), "-d", ip, "--dport", str(sp.port)]
        if p.cat.has_any:
            comment = ["-m", "comment", "--comment", q(f"{sp.spn} external IP")]
            w.nat_rules.write(["-A", "KUBE-SERVICES", *comment, *dest, "-j", p.ext], sp.origin)
        if not p.has_external:
            _external_filter(w, sp, p, "KUBE-EXTERNAL-SERVICES", dest)


def write_load_balancer(w: RestoreWriter, sp: SvcPort, p: Plan) -> None:
    for ip in sp.lb_ips:
        dest = [*_proto(sp), "-d", ip, "--dport", str(sp.port)]
        if p.cat.has_any:
            comment = ["-m", "comment", "--comment", q(f"{sp.spn} loadbalancer IP")]
            w.nat_rules.write(["-A", "KUBE-SERVICES", *comment, *dest, "-j", p.lb_target], sp.origin)
        if p.uses_fw:
            comment = ["-m", "comment", "--comment", q(f"{sp.spn} traffic not accepted by {p.lb_target}")]
            w.filter_rules.write(["-A", "KUBE-PROXY-FIREWALL", *comment, *dest, "-j", "DROP"], sp.origin)
    if not p.has_external:
        for ip in sp.lb_ips:
            _external_filter(
                w, sp, p, "KUBE-EXTERNAL-SERVICES", [*_proto(sp), "-d", ip, "--dport", str(sp.port)]
            )


def write_node_port(w: RestoreWriter, ctx: NodeContext, sp: SvcPort, p: Plan) -> None:
    if sp.node_port == 0:
        return
    head = ["-A", "KUBE-NODEPORTS", "-m", "comment", "--comment", sp.spn, *_proto(sp)]
    if p.cat.has_any:
        if ctx.localhost_node_ports and NFACCT_LOCALHOST_NP in ctx.env.nfacct:
            acct = ["-m", "nfacct", "--nfacct-name", NFACCT_LOCALHOST_NP]
            dest = ["-d", "127.0.0.0/8", "--dport", str(sp.node_port), *acct]
            w.nat_rules.write([*head, *dest, "-j", p.ext], sp.origin)
        w.nat_rules.write([*head, "--dport", str(sp.node_port), "-j", p.ext], sp.origin)
    if not p.has_external:
        local = ["-m", "addrtype", "--dst-type", "LOCAL", *_proto(sp), "--dport", str(sp.node_port)]
        _external_filter(w, sp, p, "KUBE-EXTERNAL-SERVICES", local)


def write_health_check(w: RestoreWriter, sp: SvcPort) -> None:
    if sp.hc_node_port == 0:
        return
    comment = ["-m", "comment", "--comment", q(f"{sp.spn} health check node port")]
    rule = ["-A", "KUBE-NODEPORTS", *comment, "-m", "tcp", "-p", "tcp", "--dport", str(sp.hc_node_port)]
    w.filter_rules.write([*rule, "-j", "ACCEPT"], sp.origin)


def write_internal_masquerade(sink: ServiceSink, ctx: NodeContext, sp: SvcPort, p: Plan) -> None:
    """Masquerade off-cluster traffic to the cluster IP (in KUBE-SVC/KUBE-SVL since ~v1.20)."""
    if not p.has_internal:
        return
    args = ["-m", "comment", "--comment", q(f"{sp.spn} cluster IP"), *_proto(sp)]
    args += ["-d", sp.cluster_ip, "--dport", str(sp.port)]
    if ctx.config.masquerade_all:
        sink.nat_rules.write(["-A", p.internal_chain, *args, "-j", "KUBE-MARK-MASQ"], sp.origin)
    elif ctx.detector is not None:
        rule = ["-A", p.internal_chain, *args, *ctx.detector.if_not_local, "-j", "KUBE-MARK-MASQ"]
        sink.nat_rules.write(rule, sp.origin)


def write_ext_chain(sink: ServiceSink, ctx: NodeContext, sp: SvcPort, p: Plan) -> None:
    """KUBE-EXT: masquerade (eTP Cluster) or short-circuit pod/LOCAL sources (eTP Local)."""
    if not p.uses_ext:
        return
    sink.chain(p.ext)
    out, svc = sink.nat_rules, p.svc
    if not sp.etp_local:
        comment = q(f"masquerade traffic for {sp.spn} external destinations")
        out.write(["-A", p.ext, "-m", "comment", "--comment", comment, "-j", "KUBE-MARK-MASQ"], sp.origin)
    else:
        if ctx.detector is not None:
            comment = q(f"pod traffic for {sp.spn} external destinations")
            rule = ["-A", p.ext, "-m", "comment", "--comment", comment, *ctx.detector.if_local, "-j", svc]
            out.write(rule, sp.origin)
        local = ["-m", "addrtype", "--src-type", "LOCAL"]
        comment = q(f"masquerade LOCAL traffic for {sp.spn} external destinations")
        out.write(
            ["-A", p.ext, "-m", "comment", "--comment", comment, *local, "-j", "KUBE-MARK-MASQ"], sp.origin
        )
        comment = q(f"route LOCAL traffic for {sp.spn} external destinations")
        out.write(["-A", p.ext, "-m", "comment", "--comment", comment, *local, "-j", svc], sp.origin)
    if p.has_external:
        out.write(["-A", p.ext, "-j", p.external_policy_chain], sp.origin)


def write_fw_chain(sink: ServiceSink, ctx: NodeContext, sp: SvcPort, p: Plan) -> None:
    """KUBE-FW: loadBalancerSourceRanges; what falls off the end is dropped in KUBE-PROXY-FIREWALL."""
    if not p.uses_fw:
        return
    fw = p.lb_target
    sink.chain(fw)
    head = ["-A", fw, "-m", "comment", "--comment", q(f"{sp.spn} loadbalancer IP")]
    from_node = False
    for cidr in sp.source_ranges:
        sink.nat_rules.write([*head, "-s", cidr, "-j", p.ext], sp.origin)
        from_node = from_node or in_cidr(ctx.node_ip, cidr)
    if from_node:
        for ip in sp.lb_ips:
            sink.nat_rules.write([*head, "-s", ip, "-j", p.ext], sp.origin)
    comment = q(f"other traffic to {sp.spn} will be dropped by KUBE-PROXY-FIREWALL")
    sink.nat_rules.write(["-A", fw, "-m", "comment", "--comment", comment], sp.origin)


def write_policy_chain(
    out: Buffer, sp: SvcPort, chain: str, eps: list[EndpointInfo], comments: bool, seps: dict[str, str]
) -> None:
    """`writeServiceToEndpointRules`: affinity checks first, then the 1/n balancing rules."""
    head = f"-A {chain} -m comment --comment " if comments else f"-A {chain} "
    if sp.affinity_s:
        for ep in eps:
            sep = seps[ep.addr]
            comment = f'"{sp.spn} -> {ep.addr}" ' if comments else ""
            out.line(
                f"{head}{comment}-m recent --name {sep} --rcheck --seconds {sp.affinity_s} --reap -j {sep}",
                sp.origin,
            )
    n = len(eps)
    for i, ep in enumerate(eps):
        comment = f'"{sp.spn} -> {ep.addr}" ' if comments else ""
        stat = f"-m statistic --mode random --probability {probability(n - i)} " if i < n - 1 else ""
        out.line(f"{head}{comment}{stat}-j {seps[ep.addr]}", sp.origin)


def write_endpoint_chain(sink: ServiceSink, sp: SvcPort, ep: EndpointInfo, comments: bool, sep: str) -> None:
    """KUBE-SEP: hairpin masquerade, affinity `--set`, DNAT."""
    sink.chain(sep)
    head = f"-A {sep} -m comment --comment {sp.spn}" if comments else f"-A {sep}"
    sink.nat_rules.line(f"{head} -s {ep.ip} -j KUBE-MARK-MASQ", sp.origin)
    affinity = f" -m recent --name {sep} --set" if sp.affinity_s else ""
    proto = sp.protocol
    sink.nat_rules.line(
        f"{head}{affinity} -m {proto} -p {proto} -j DNAT --to-destination {ep.addr}", sp.origin
    )


def generate_current(
    ctx: NodeContext,
    ports: list[SvcPort],
    *,
    changed: set[str] | None = None,
    existing_nat_chains: set[str] | None = None,
) -> tuple[RestoreWriter, set[str]]:
    """One `syncProxyRules`: a full sync when `changed` is None, else a partial one (KEP-3453) that
    writes the per-service chains only of the namespace/name keys in `changed`. Chains present in
    `existing_nat_chains` but no longer used are flushed and deleted. Returns the active nat chains."""
    w = RestoreWriter()
    write_top_chains(w)
    write_postrouting(w, ctx)
    write_localnet_firewall(w, ctx)
    active: set[str] = set()
    large = sum(len(sp.endpoints) for sp in ports) > ctx.env.large_cluster_threshold
    for sp in ports:
        written = changed is None or sp.spn.partition(":")[0] in changed
        if written:
            sink = ServiceSink(w.nat_chains, w.nat_rules, active)
        else:
            sink = ServiceSink(Discard(), Discard(), active)
        write_service_port(w, ctx, sp, sink, large)
    for chain in sorted((existing_nat_chains or set()) - active):
        if chain.startswith(SERVICE_CHAIN_PREFIXES):
            w.nat_chains.write([chain_line(chain)])
            w.nat_rules.write(["-X", chain])
    write_nodeports_jump(w, ctx)
    write_forward(w, ctx)
    return w, active
