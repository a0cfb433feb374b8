"""The restore input of kube-proxy v1.14 / v1.15 (`syncProxyRules` of v1.15.3), one function per
chain family. v1.14 is v1.15 without the `--ctstate INVALID -j DROP` rule (PR #74840).

Era traits kept here: masquerade with `--set-xmark M/M` and a mark-matching MASQUERADE; the
cluster-IP masquerade rule in KUBE-SERVICES; `/32` on addresses (`utilproxy.ToCIDR`); KUBE-XLB for
externalTrafficPolicy Local and KUBE-MARK-DROP (owned by kubelet) for what must be dropped; no
comment on SVC->SEP and SEP rules (`appendServiceCommentLocked` threw its result away);
probabilities `%0.5f`; KUBE-FORWARD conntrack rules only with a cluster CIDR.
"""

from __future__ import annotations

from kplab.kubeproxy.endpoints import EndpointInfo
from kplab.kubeproxy.ipaddr import in_cidr, to_cidr
from kplab.kubeproxy.names import Version, fw_chain, sep_chain, svc_chain, xlb_chain
from kplab.kubeproxy.resolve import NodeContext, SvcPort
from kplab.kubeproxy.writer import RestoreWriter, chain_line, q

NODEPORTS_COMMENT = q("kubernetes service nodeports; NOTE: this must be the last rule in this chain")


def probability(n: int) -> str:
    """v1.15 `computeProbability`: `fmt.Sprintf("%0.5f", 1.0/float64(n))` (PR #83599 made it %0.10f)."""
    return f"{1.0 / n:0.5f}"


def generate_legacy(
    ctx: NodeContext, ports: list[SvcPort], *, existing_nat_chains: set[str] | None = None
) -> RestoreWriter:
    """One v1.15 `syncProxyRules` (always a full sync); stale KUBE-SVC/SEP/FW/XLB chains among
    `existing_nat_chains` are flushed and deleted."""
    w = RestoreWriter()
    for name in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD"):
        w.filter_chains.write([chain_line(name)])
    for name in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"):
        w.nat_chains.write([chain_line(name)])
    w.nat_rules.line(
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        f"-m mark --mark {ctx.mark} -j MASQUERADE"
    )
    w.nat_rules.write(["-A", "KUBE-MARK-MASQ", "-j", "MARK", "--set-xmark", ctx.mark])
    for sp in ports:
        write_service_port(w, ctx, sp)
    active = {line.split()[0][1:] for line in w.nat_chains.texts}
    for chain in sorted((existing_nat_chains or set()) - active):
        if chain.startswith(("KUBE-SVC-", "KUBE-SEP-", "KUBE-FW-", "KUBE-XLB-")):
            w.nat_chains.write([chain_line(chain)])
            w.nat_rules.write(["-X", chain])
    write_nodeports_jump(w, ctx)
    write_forward(w, ctx)
    return w


def _proto(sp: SvcPort) -> list[str]:
    return ["-m", sp.protocol, "-p", sp.protocol]


def write_service_port(w: RestoreWriter, ctx: NodeContext, sp: SvcPort) -> None:
    has_endpoints = bool(sp.endpoints)
    svc, xlb = svc_chain(sp.spn, sp.protocol), xlb_chain(sp.spn, sp.protocol)
    if has_endpoints:
        w.nat_chains.write([chain_line(svc)])
    if sp.only_local_legacy:
        w.nat_chains.write([chain_line(xlb)])
    write_cluster_ip(w, ctx, sp)
    write_external_ips(w, sp)
    write_load_balancer(w, ctx, sp)
    write_node_port(w, sp)
    if not has_endpoints:
        return
    write_endpoint_rules(w, sp)
    if sp.only_local_legacy:
        write_xlb_chain(w, ctx, sp)


def _reject(w: RestoreWriter, sp: SvcPort, chain: str, match: list[str]) -> None:
    comment = ["-m", "comment", "--comment", q(f"{sp.spn} has no endpoints")]
    w.filter_rules.write(["-A", chain, *comment, *match, "-j", "REJECT"], sp.origin)


def write_cluster_ip(w: RestoreWriter, ctx: NodeContext, sp: SvcPort) -> None:
    dest = [*_proto(sp), "-d", to_cidr(sp.cluster_ip), "--dport", str(sp.port)]
    if not sp.endpoints:
        _reject(w, sp, "KUBE-SERVICES", dest)
        return
    args = ["-A", "KUBE-SERVICES", "-m", "comment", "--comment", q(f"{sp.spn} cluster IP"), *dest]
    if ctx.config.masquerade_all:
        w.nat_rules.write([*args, "-j", "KUBE-MARK-MASQ"], sp.origin)
    elif ctx.config.cluster_cidr:
        w.nat_rules.write([*args, "! -s", ctx.config.cluster_cidr, "-j", "KUBE-MARK-MASQ"], sp.origin)
    w.nat_rules.write([*args, "-j", svc_chain(sp.spn, sp.protocol)], sp.origin)


def write_external_ips(w: RestoreWriter, sp: SvcPort) -> None:
    svc = svc_chain(sp.spn, sp.protocol)
    for ip in sp.external_ips:
        dest = [*_proto(sp), "-d", to_cidr(ip), "--dport", str(sp.port)]
        if not sp.endpoints:
            _reject(w, sp, "KUBE-EXTERNAL-SERVICES", dest)
            continue
        args = ["-A", "KUBE-SERVICES", "-m", "comment", "--comment", q(f"{sp.spn} external IP"), *dest]
        w.nat_rules.write([*args, "-j", "KUBE-MARK-MASQ"], sp.origin)
        external = ["-m", "physdev", "!", "--physdev-is-in", "-m", "addrtype", "!", "--src-type", "LOCAL"]
        w.nat_rules.write([*args, *external, "-j", svc], sp.origin)
        w.nat_rules.write([*args, "-m", "addrtype", "--dst-type", "LOCAL", "-j", svc], sp.origin)


def write_load_balancer(w: RestoreWriter, ctx: NodeContext, sp: SvcPort) -> None:
    fw = fw_chain(sp.spn, sp.protocol)
    chosen = xlb_chain(sp.spn, sp.protocol) if sp.only_local_legacy else svc_chain(sp.spn, sp.protocol)
    for ip in sp.lb_ips:
        dest = [*_proto(sp), "-d", to_cidr(ip), "--dport", str(sp.port)]
        if not sp.endpoints:
            _reject(w, sp, "KUBE-SERVICES", dest)
            continue
        w.nat_chains.write([chain_line(fw)])
        comment = ["-m", "comment", "--comment", q(f"{sp.spn} loadbalancer IP")]
        w.nat_rules.write(["-A", "KUBE-SERVICES", *comment, *dest, "-j", fw], sp.origin)
        args = ["-A", fw, *comment]
        if not sp.only_local_legacy:
            w.nat_rules.write([*args, "-j", "KUBE-MARK-MASQ"], sp.origin)
        if not sp.source_ranges:
            w.nat_rules.write([*args, "-j", chosen], sp.origin)
        else:
            for cidr in sp.source_ranges:
                w.nat_rules.write([*args, "-s", cidr, "-j", chosen], sp.origin)
            if any(in_cidr(ctx.node_ip, cidr) for cidr in sp.source_ranges):
                w.nat_rules.write([*args, "-s", to_cidr(ip), "-j", chosen], sp.origin)
        w.nat_rules.write([*args, "-j", "KUBE-MARK-DROP"], sp.origin)


def write_node_port(w: RestoreWriter, sp: SvcPort) -> None:
    if sp.node_port == 0:
        return
    if not sp.endpoints:
        local = ["-m", "addrtype", "--dst-type", "LOCAL", *_proto(sp), "--dport", str(sp.node_port)]
        _reject(w, sp, "KUBE-EXTERNAL-SERVICES", local)
        return
    args = [
        "-A",
        "KUBE-NODEPORTS",
        "-m",
        "comment",
        "--comment",
        sp.spn,
        *_proto(sp),
        "--dport",
        str(sp.node_port),
    ]
    if not sp.only_local_legacy:
        w.nat_rules.write([*args, "-j", "KUBE-MARK-MASQ"], sp.origin)
        w.nat_rules.write([*args, "-j", svc_chain(sp.spn, sp.protocol)], sp.origin)
    else:
        w.nat_rules.write([*args, "-s", "127.0.0.0/8", "-j", "KUBE-MARK-MASQ"], sp.origin)
        w.nat_rules.write([*args, "-j", xlb_chain(sp.spn, sp.protocol)], sp.origin)


def write_endpoint_rules(w: RestoreWriter, sp: SvcPort) -> None:
    """SEP chain lines, affinity checks, then per endpoint its balancing rule and its SEP rules."""
    svc = svc_chain(sp.spn, sp.protocol)
    seps = [sep_chain(sp.spn, sp.protocol, ep.addr) for ep in sp.endpoints]
    for sep in seps:
        w.nat_chains.write([chain_line(sep)])
    if sp.affinity_s:
        for sep in seps:
            recent = ["-m", "recent", "--name", sep, "--rcheck", "--seconds", str(sp.affinity_s), "--reap"]
            w.nat_rules.write(["-A", svc, *recent, "-j", sep], sp.origin)
    n = len(seps)
    for i, (ep, sep) in enumerate(zip(sp.endpoints, seps, strict=True)):
        stat = (
            ["-m", "statistic", "--mode", "random", "--probability", probability(n - i)] if i < n - 1 else []
        )
        w.nat_rules.write(["-A", svc, *stat, "-j", sep], sp.origin)
        write_sep_chain(w, sp, ep, sep)


def write_sep_chain(w: RestoreWriter, sp: SvcPort, ep: EndpointInfo, sep: str) -> None:
    w.nat_rules.write(["-A", sep, "-s", to_cidr(ep.ip), "-j", "KUBE-MARK-MASQ"], sp.origin)
    affinity = ["-m", "recent", "--name", sep, "--set"] if sp.affinity_s else []
    dnat = ["-j", "DNAT", "--to-destination", ep.addr]
    w.nat_rules.write(["-A", sep, *affinity, *_proto(sp), *dnat], sp.origin)


def write_xlb_chain(w: RestoreWriter, ctx: NodeContext, sp: SvcPort) -> None:
    """KUBE-XLB (eTP Local): LOCAL sources and pods to KUBE-SVC, the rest to local endpoints."""
    xlb, svc = xlb_chain(sp.spn, sp.protocol), svc_chain(sp.spn, sp.protocol)
    local_src = ["-m", "addrtype", "--src-type", "LOCAL"]
    comment = q(f"masquerade LOCAL traffic for {sp.spn} LB IP")
    w.nat_rules.write(
        ["-A", xlb, "-m", "comment", "--comment", comment, *local_src, "-j", "KUBE-MARK-MASQ"], sp.origin
    )
    comment = q(f"route LOCAL traffic for {sp.spn} LB IP to service chain")
    w.nat_rules.write(["-A", xlb, "-m", "comment", "--comment", comment, *local_src, "-j", svc], sp.origin)
    if ctx.config.cluster_cidr:
        comment = q("Redirect pods trying to reach external loadbalancer VIP to clusterIP")
        rule = ["-A", xlb, "-m", "comment", "--comment", comment, "-s", ctx.config.cluster_cidr, "-j", svc]
        w.nat_rules.write(rule, sp.origin)
    local = [ep for ep in sp.endpoints if ep.local]
    if not local:
        comment = q(f"{sp.spn} has no local endpoints")
        w.nat_rules.write(
            ["-A", xlb, "-m", "comment", "--comment", comment, "-j", "KUBE-MARK-DROP"], sp.origin
        )
        return
    seps = [sep_chain(sp.spn, sp.protocol, ep.addr) for ep in local]
    if sp.affinity_s:
        for sep in seps:
            recent = ["-m", "recent", "--name", sep, "--rcheck", "--seconds", str(sp.affinity_s), "--reap"]
            w.nat_rules.write(
                ["-A", xlb, "-m", "comment", "--comment", sp.spn, *recent, "-j", sep], sp.origin
            )
    n = len(seps)
    for i, sep in enumerate(seps):
        comment = q(f"Balancing rule {i} for {sp.spn}")
        stat = (
            ["-m", "statistic", "--mode", "random", "--probability", probability(n - i)] if i < n - 1 else []
        )
        w.nat_rules.write(["-A", xlb, "-m", "comment", "--comment", comment, *stat, "-j", sep], sp.origin)


def write_nodeports_jump(w: RestoreWriter, ctx: NodeContext) -> None:
    head = ["-A", "KUBE-SERVICES", "-m", "comment", "--comment", NODEPORTS_COMMENT]
    if ctx.node_port_match_all:
        w.nat_rules.write([*head, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "KUBE-NODEPORTS"])
        return
    for ip in ctx.node_port_ips:
        w.nat_rules.write([*head, "-d", ip, "-j", "KUBE-NODEPORTS"])


def write_forward(w: RestoreWriter, ctx: NodeContext) -> None:
    """KUBE-FORWARD: the INVALID drop from v1.15 on (PR #74840), accept marked traffic, and with a
    cluster CIDR accept established traffic from and to pods."""
    if ctx.version is Version.V1_15:
        w.filter_rules.line("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP")
    w.filter_rules.line(
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {ctx.mark} -j ACCEPT"
    )
    cidr = ctx.config.cluster_cidr
    if cidr:
        established = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        w.filter_rules.line(
            f"-A KUBE-FORWARD -s {cidr} "
            f'-m comment --comment "kubernetes forwarding conntrack pod source rule" {established}'
        )
        w.filter_rules.line(
            '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack pod destination rule" '
            f"-d {cidr} {established}"
        )
