"""The top-level chains of current kube-proxy's restore input (`syncProxyRules`, ~v1.33): the chain
lines it always writes, KUBE-POSTROUTING/KUBE-MARK-MASQ, KUBE-FIREWALL, the KUBE-NODEPORTS jump
that ends nat KUBE-SERVICES, and KUBE-FORWARD."""

from __future__ import annotations

from kplab.kubeproxy.resolve import NodeContext
from kplab.kubeproxy.writer import RestoreWriter, chain_line

NFACCT_INVALID = "ct_state_invalid_dropped_pkts"
NFACCT_LOCALHOST_NP = "localhost_nps_accepted_pkts"
NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
FILTER_TOP = (
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
)
NAT_TOP = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")


def write_top_chains(w: RestoreWriter) -> None:
    for name in FILTER_TOP:
        w.filter_chains.line(chain_line(name))
    for name in NAT_TOP:
        w.nat_chains.line(chain_line(name))


def write_postrouting(w: RestoreWriter, ctx: NodeContext) -> None:
    """KUBE-POSTROUTING: RETURN unmarked, clear the mark (PR #92035), MASQUERADE; KUBE-MARK-MASQ."""
    m = ctx.mark
    random_fully = " --random-fully" if ctx.env.has_random_fully else ""
    w.nat_rules.line(f"-A KUBE-POSTROUTING -m mark ! --mark {m}/{m} -j RETURN")
    w.nat_rules.line(f"-A KUBE-POSTROUTING -j MARK --xor-mark {m}")
    w.nat_rules.line(
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        f"-j MASQUERADE{random_fully}"
    )
    w.nat_rules.line(f"-A KUBE-MARK-MASQ -j MARK --or-mark {m}")


def write_localnet_firewall(w: RestoreWriter, ctx: NodeContext) -> None:
    """KUBE-FIREWALL's anti-martian rule, only with localhostNodePorts (issue #90259)."""
    if not ctx.localhost_node_ports:
        return
    w.filter_chains.line(chain_line("KUBE-FIREWALL"))
    w.filter_rules.line(
        '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 '
        "! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
    )


def write_nodeports_jump(w: RestoreWriter, ctx: NodeContext) -> None:
    """The last rule of nat KUBE-SERVICES: LOCAL destinations, or each nodePortAddresses IP."""
    head = f"-A KUBE-SERVICES -m comment --comment {NODEPORTS_COMMENT}"
    if ctx.node_port_match_all:
        loopback = "" if ctx.localhost_node_ports else " ! -d 127.0.0.0/8"
        w.nat_rules.line(f"{head} -m addrtype --dst-type LOCAL{loopback} -j KUBE-NODEPORTS")
        return
    for ip in ctx.node_port_ips:
        if ip.startswith("127.") and not ctx.localhost_node_ports:
            continue  # "--nodeport-addresses includes localhost but --iptables-localhost-nodeports=false"
        w.nat_rules.line(f"{head} -d {ip} -j KUBE-NODEPORTS")


def write_forward(w: RestoreWriter, ctx: NodeContext) -> None:
    """KUBE-FORWARD: the INVALID drop (PR #74840; omitted when be_liberal, PR #120412; nfacct,
    PR #122812), then accept marked and established traffic."""
    if not ctx.liberal:
        nfacct = f" -m nfacct --nfacct-name {NFACCT_INVALID}" if NFACCT_INVALID in ctx.env.nfacct else ""
        w.filter_rules.line(f"-A KUBE-FORWARD -m conntrack --ctstate INVALID{nfacct} -j DROP")
    m = ctx.mark
    w.filter_rules.line(
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {m}/{m} -j ACCEPT'
    )
    w.filter_rules.line(
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )
