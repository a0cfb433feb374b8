"""What a trace says besides its path: why it stopped (`reason`) and what it assumed (`warnings`).

- `node_for_trace` builds the node a trace walks from what the user gave (`--node-ip`,
  `--ip-addr`, `--ip-route`); a missing fact becomes a stated default, never a DROP: without any
  address the node gets 192.0.2.1 (TEST-NET-1, a documentation address) on eth0.
- `reason_of` says in one line why a walk ended where it did (the rule, the policy, conntrack, the
  route) or where the packet went.
- `ipvs_warning` says when the dump is kube-proxy's IPVS mode (IPVS itself is not modelled);
- `nodeport_warning` notices a packet to an address not known as local when the dump has a
  NodePort rule for its port; `set_warning` names the ipsets decided without membership.
"""

from __future__ import annotations

from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.hooks import NodeVerdict
from kplab.netfilter.iproute import Iface, NodeRoutes, build
from kplab.netfilter.ipset import IpSets
from kplab.netfilter.model import Rule, Ruleset
from kplab.netfilter.node import NodeNet
from kplab.packet import PROTO_NAMES, fmt_ip

DEFAULT_NODE_IP = 0xC0000201  # 192.0.2.1, RFC 5737 TEST-NET-1
NODEPORT_CHAINS = ("KUBE-NODEPORTS", "KUBE-NODE-PORT")


def node_for_trace(
    node_ips: tuple[int, ...], ifaces: list[Iface] | None, routes: NodeRoutes | None
) -> tuple[NodeNet, list[str]]:
    """The node to walk, and the warnings saying what was assumed."""
    warnings: list[str] = []
    if ifaces is None and routes is None:
        node = NodeNet.simple(node_ips)
        where = "eth0 with a default route out of eth0 (give --ip-addr/--ip-route for the real ones)"
    else:
        node = build(ifaces, routes, node_ips)
        where = ""
        if routes is None:
            dev = next((r.dev for r in node.routes if r.mask == 0), "eth0")
            warnings.append(f"no --ip-route: routes are the addresses' own prefixes and a default route out "
                            f"of {dev}")  # fmt: skip
    if not any(a >> 24 != 127 for addrs in node.addrs.values() for a in addrs):
        dev = next((r.dev for r in node.routes if r.mask == 0 and r.dev), "eth0")
        node.addrs[dev] = (*node.addrs.get(dev, ()), DEFAULT_NODE_IP)
        node.refresh()
        warnings.append(
            f"no node address given: the node is assumed to have {fmt_ip(DEFAULT_NODE_IP)} (a documentation "
            f"address) on {dev}; give --node-ip IP (or --ip-addr FILE) for its real addresses"
        )
    elif where:
        warnings.append(f"interfaces not given: the node's addresses are assumed to be on {where}")
    return node, warnings


def reason_of(result: NodeVerdict) -> str:
    """One line: why the walk stopped, or where the packet went."""
    hook = result.hook.value
    if result.verdict == "ACCEPT":
        if result.delivery == "local":
            return "accepted: delivered to the node itself (INPUT)"
        verb = "forwarded" if result.delivery == "forward" else "sent"
        return f"accepted: {verb} out of {result.out_iface or '?'}"
    if result.reason:
        return f"{result.verdict} at {hook}: {result.reason}"
    last = _last_decision(result.trace)
    if last is None:
        return f"{result.verdict} at {hook}"
    where = f"{last.table}:{last.chain}"
    if last.kind == "policy":
        return f"{result.verdict} at {hook}: policy {last.verdict} of built-in chain {where}"
    source = last.rule.source if last.rule is not None else last.source
    at = f" ({source.file}:{source.line})" if source is not None and source.line else ""
    return f"{result.verdict} at {hook}: rule {where}:rule:{last.number}{at}: {last.text}"


def _last_decision(trace: list[TraceEntry]) -> TraceEntry | None:
    for entry in reversed(trace):
        if entry.kind in ("rule", "policy"):
            return entry
    return None


def _dport_rules(ruleset: Ruleset, proto: int, port: int) -> list[Rule]:
    nat = ruleset.tables.get("nat")
    if nat is None:
        return []
    found = []
    name = PROTO_NAMES.get(proto, "")
    for chain_name in NODEPORT_CHAINS:
        chain = nat.chains.get(chain_name)
        for rule in chain.rules if chain is not None else ():
            protocol = rule.match("")
            p_opt = protocol.get("-p") if protocol is not None else None
            if p_opt is not None and not p_opt.negated and p_opt.value not in (name, str(proto)):
                continue
            for m in rule.matches:
                opt = m.get("--dport") or m.get("--destination-port")
                if opt is not None and not opt.negated and opt.value == str(port):
                    found.append(rule)
    return found


def nodeport_warning(
    ruleset: Ruleset, node: NodeNet, dst: int, proto: int, dport: int, sets: IpSets | None = None
) -> str | None:
    """A warning when `dst` is not known as local but the dump has a NodePort rule for the port (or,
    in IPVS mode, its KUBE-NODE-PORT-<PROTO> set holds it)."""
    if node.is_local(dst) or not dport:
        return None
    rules = _dport_rules(ruleset, proto, dport)
    set_name = f"KUBE-NODE-PORT-{PROTO_NAMES.get(proto, '').upper()}"
    if rules:
        first = rules[0]
        where = f"{first.source.file}:{first.source.line}" if first.source.line else first.chain
    elif sets is not None and sets.has_port(set_name, proto, dport):
        where = f"{sets.file}: set {set_name}"
    else:
        return None
    name = PROTO_NAMES.get(proto, str(proto))
    return (
        f"{fmt_ip(dst)} is not an address of this node as kplab knows it, so the NodePort rule for {name} "
        f"port {dport} ({where}) was not reached (KUBE-NODEPORTS needs --dst-type LOCAL): if {fmt_ip(dst)} "
        f"is this node's, give --node-ip {fmt_ip(dst)}"
    )


IPVS_SETS = frozenset({"KUBE-CLUSTER-IP", "KUBE-LOOP-BACK", "KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-UDP",
                       "KUBE-EXTERNAL-IP", "KUBE-LOAD-BALANCER", "KUBE-NODE-PORT-LOCAL-TCP"})  # fmt: skip


def ipvs_rules(ruleset: Ruleset) -> list[Rule]:
    """Rules only kube-proxy's IPVS mode writes: tests of its ipsets, jumps to KUBE-IPVS-* chains."""
    found = []
    for table in ruleset.tables.values():
        for chain in table.chains.values():
            for rule in chain.rules:
                m = rule.match("set")
                opt = m.get("--match-set") if m is not None else None
                target = rule.target.name if rule.target is not None else ""
                if (opt is not None and opt.values and opt.values[0] in IPVS_SETS) or target.startswith(
                    "KUBE-IPVS"
                ):
                    found.append(rule)
    return found


def ipvs_warning(ruleset: Ruleset) -> str | None:
    rules = ipvs_rules(ruleset)
    if not rules:
        return None
    first = rules[0]
    where = f"{first.source.file}:{first.source.line}"
    return (
        f"the dump is kube-proxy's IPVS mode ({where}: {first.chain} tests its ipsets): IPVS, not these "
        "rules, translates Service addresses, and kplab trace does not model IPVS; the walk shows what "
        "iptables does to the packet around it"
    )


def set_warning(sets: IpSets, unknown: str) -> str | None:
    if not sets.missing:
        return None
    names = ", ".join(sorted(sets.missing))
    taken = "matching" if unknown == "always-match" else "not matching"
    source = f"not in {sets.file}" if sets.file else "no --ipset-save given"
    return (
        f"no membership for ipset {names} ({source}): its tests were taken as {taken} (--unknown {unknown})"
    )
