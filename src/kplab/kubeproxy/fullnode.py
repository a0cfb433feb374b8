"""`--full-node`: what a node holds beyond kube-proxy's restore input, so the text loads into an
empty network namespace and works: the jump rules kube-proxy installs with `EnsureRule(Prepend)`
(`iptablesJumpChains`), the chains it `EnsureChain`s, its KUBE-PROXY-CANARY chains (current), and
for v1.14/v1.15 kubelet's KUBE-MARK-DROP / KUBE-FIREWALL, which those versions jump to."""

from __future__ import annotations

from kplab.kubeproxy.resolve import NodeContext
from kplab.kubeproxy.writer import Buffer, RestoreWriter, chain_line, q

NEW = ("-m", "conntrack", "--ctstate", "NEW")
Jump = tuple[str, str, str, str, tuple[str, ...]]  # table, built-in chain, target chain, comment, extra args

CURRENT_JUMPS: tuple[Jump, ...] = (
    ("filter", "INPUT", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", NEW),
    ("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", NEW),
    ("filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports", ()),
    ("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals", NEW),
    ("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", NEW),
    ("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules", ()),
    ("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", NEW),
    ("filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", NEW),
    ("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", NEW),
    ("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", ()),
    ("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals", ()),
    ("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules", ()),
    # iptablesKubeletJumpChains: duplicates of kubelet's, no comment
    ("filter", "INPUT", "KUBE-FIREWALL", "", ()),
    ("filter", "OUTPUT", "KUBE-FIREWALL", "", ()),
)

# kubelet (v1.15 era) ran first: its prepended KUBE-FIREWALL jumps end up after kube-proxy's.
KUBELET_115_JUMPS: tuple[Jump, ...] = (
    ("filter", "OUTPUT", "KUBE-FIREWALL", "", ()),
    ("filter", "INPUT", "KUBE-FIREWALL", "", ()),
)
LEGACY_JUMPS: tuple[Jump, ...] = (
    ("filter", "INPUT", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", NEW),
    ("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals", NEW),
    ("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", NEW),
    ("filter", "INPUT", "KUBE-SERVICES", "kubernetes service portals", NEW),
    ("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules", ()),
    ("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", ()),
    ("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals", ()),
    ("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules", ()),
)
HOOK_ORDER = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
DROP_MARK = "0x00008000/0x00008000"  # kubelet's iptablesDropBit 15, "%#08x/%#08x"


def _prepended(jumps: tuple[Jump, ...], table: str) -> list[str]:
    """The built-in chains' rules after each `EnsureRule(Prepend, ...)` in turn."""
    chains: dict[str, list[str]] = {}
    for tbl, chain, target, comment, extra in jumps:
        if tbl != table:
            continue
        words = ["-A", chain, *extra] + (["-m", "comment", "--comment", q(comment)] if comment else [])
        chains.setdefault(chain, []).insert(0, " ".join([*words, "-j", target]))
    return [rule for hook in HOOK_ORDER for rule in chains.get(hook, [])]


def full_node_lines(w: RestoreWriter, ctx: NodeContext) -> Buffer:
    legacy = ctx.version.legacy
    jumps = KUBELET_115_JUMPS + LEGACY_JUMPS if legacy else CURRENT_JUMPS
    out = Buffer()
    if not legacy:
        for line in ("*mangle", chain_line("KUBE-PROXY-CANARY"), "COMMIT"):
            out.line(line)
    for table in ("filter", "nat"):
        declared = w.chains(table).texts
        wanted = [t for tbl, _, t, _, _ in jumps if tbl == table]
        extra_rules: list[str] = []
        if not legacy:
            wanted.append("KUBE-PROXY-CANARY")
        elif table == "nat":
            wanted.append("KUBE-MARK-DROP")
            extra_rules.append(f"-A KUBE-MARK-DROP -j MARK --set-xmark {DROP_MARK}")
        else:
            comment = q("kubernetes firewall for dropping marked packets")
            extra_rules.append(
                f"-A KUBE-FIREWALL -m comment --comment {comment} -m mark --mark {DROP_MARK} -j DROP"
            )
        extra_chains = []
        for name in wanted:
            line = chain_line(name)
            if line not in declared and line not in extra_chains:
                extra_chains.append(line)
        out.line(f"*{table}")
        out.extend(w.chains(table))
        for line in extra_chains + _prepended(jumps, table) + extra_rules:
            out.line(line)
        out.extend(w.rules(table))
        out.line("COMMIT")
    return out
