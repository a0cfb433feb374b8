"""kube-proxy's own test tracer (`iptablesTracer` / `tracePacket` in proxier_test.go), reproduced.

Stateless by design: a rule that tests affinity (`--rcheck`), a mark (`--mark`) or conntrack state
(`--ctstate`) never matches; a rule without `-j` is skipped; only `-s -d -p --dport` and addrtype
`--src-type/--dst-type` (LOCAL or not) are tested, `--dport` as a string; every other option is
ignored. Targets: `KUBE-MARK-MASQ` sets the masquerade flag and continues; ACCEPT, DROP and
REJECT record a verdict and end the chain; DNAT records its destination and ends the chain; any
other target runs the chain of that name (nothing, if there is none). A sub-chain that ended ends
its caller too, unless the jump carried `--probability`: then the caller goes on, so every
probabilistic branch becomes an outcome, in rule order.

Order: nat PREROUTING (or, when the input has no PREROUTING rules, nat KUBE-SERVICES, as if
kube-proxy's jump rule were there); the destination becomes the first DNAT outcome's address (the
port stays); then filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS and
KUBE-PROXY-FIREWALL, each from its first rule. POSTROUTING is not run.

kplab adds what the upstream tracer does not report: each outcome's probability (the product of
`p` for each probabilistic jump taken and `1 - p` for each one passed over) and the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.model import Match, Option, Rule, Ruleset
from kplab.netfilter.optspec import IMPLICIT_SHORT
from kplab.packet import ip, parse_cidr

FILTER_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL")
_STATE_OPTIONS = frozenset({"--rcheck", "--mark", "--ctstate"})
_VERDICTS = frozenset({"ACCEPT", "DROP", "REJECT"})


@dataclass(slots=True)
class Branch:
    """One outcome: a DNAT destination ("ip:port") or a verdict, with its probability."""

    dnat: str | None
    verdict: str | None
    masquerade: bool
    probability: float
    path: list[TraceEntry] = field(default_factory=list)


@dataclass(slots=True)
class StatelessTrace:
    outcomes: list[Branch]
    masquerade: bool
    path: list[TraceEntry]


@dataclass(slots=True)
class _Packet:
    src: str
    proto: str
    dst: str
    dport: str
    local: frozenset[str]


def trace_stateless(
    ruleset: Ruleset, src: str, proto: str, dst: str, dport: int | str, local_ips: Iterable[str]
) -> StatelessTrace:
    """Outcomes of kube-proxy's tracer for a packet (addresses as text, as upstream compares them)."""
    local = frozenset({"127.0.0.1", "::1", *local_ips})
    tracer = _Tracer(ruleset, _Packet(src, proto, dst, str(dport), local))
    nat = ruleset.tables.get("nat")
    start = (
        "PREROUTING"
        if nat is not None and nat.chains.get("PREROUTING", None) and _has_rules(ruleset, "nat", "PREROUTING")
        else "KUBE-SERVICES"
    )
    tracer.run_chain("nat", start, 1.0, False)
    dnats = [b.dnat for b in tracer.outcomes if b.dnat is not None]
    if dnats:
        tracer.pkt.dst = dnats[0].rsplit(":", 1)[0]
    for chain in FILTER_CHAINS:
        tracer.run_chain("filter", chain, 1.0, False)
    return StatelessTrace(tracer.outcomes, tracer.masquerade, tracer.path)


def _has_rules(ruleset: Ruleset, table: str, chain: str) -> bool:
    found = ruleset.tables[table].chains.get(chain)
    return found is not None and bool(found.rules)


class _Tracer:
    def __init__(self, ruleset: Ruleset, pkt: _Packet) -> None:
        self.ruleset = ruleset
        self.pkt = pkt
        self.outcomes: list[Branch] = []
        self.path: list[TraceEntry] = []
        self.masquerade = False

    def run_chain(self, table: str, name: str, weight: float, masq: bool) -> tuple[bool, float, bool]:
        """(terminated, weight left for the caller, masquerade flag after the chain)."""
        chain = self.ruleset.tables[table].chains.get(name) if table in self.ruleset.tables else None
        if chain is None:
            return False, weight, masq
        for number, rule in enumerate(chain.rules, 1):
            if rule.target is None or not self.matches(rule):
                continue
            self.path.append(TraceEntry(table, name, "rule", number, rule, rule.source))
            jump = rule.target.name
            if jump == "KUBE-MARK-MASQ":
                masq = self.masquerade = True
            elif jump in _VERDICTS or jump == "DNAT":
                dnat = _option_value(rule.target.options, "--to-destination") if jump == "DNAT" else None
                verdict = None if jump == "DNAT" else jump
                self.outcomes.append(Branch(dnat, verdict, masq, weight, list(self.path)))
                return True, 0.0, masq
            else:
                probability = _probability(rule)
                if probability is None:
                    ended, weight, masq = self.run_chain(table, jump, weight, masq)
                    if ended:
                        return True, weight, masq
                else:
                    self.run_chain(table, jump, weight * probability, masq)
                    weight *= 1.0 - probability
        return False, weight, masq

    def matches(self, rule: Rule) -> bool:
        """upstream `ruleMatches`."""
        pkt = self.pkt
        for match in rule.matches:
            for opt in match.options:
                if not self.option_holds(match, opt, pkt):
                    return False
        return True

    @staticmethod
    def option_holds(match: Match, opt: Option, pkt: _Packet) -> bool:
        name = IMPLICIT_SHORT.get(opt.name, opt.name) if not match.module else opt.name
        if name in _STATE_OPTIONS:
            return False
        value = opt.value
        if name == "-s":
            return _address_matches(pkt.src, value) != opt.negated
        if name == "-d":
            return _address_matches(pkt.dst, value) != opt.negated
        if name == "-p":
            return (pkt.proto == value) != opt.negated
        if name in ("--dport", "--destination-port") and match.module in ("tcp", "udp", "sctp"):
            return (pkt.dport == value) != opt.negated
        if name in ("--src-type", "--dst-type") and match.module == "addrtype":
            addr = pkt.src if name == "--src-type" else pkt.dst
            kind = "LOCAL" if addr in pkt.local else "not-matched"
            return (kind == value) != opt.negated
        return True


def _address_matches(addr: str, value: str) -> bool:
    """upstream `addressMatches`: a CIDR contains it, or an exact IP equals it."""
    if "/" in value:
        try:
            network, mask = parse_cidr(value)
            return ip(addr) & mask == network
        except ValueError:
            return False
    return addr == value


def _option_value(options: tuple[Option, ...], name: str) -> str | None:
    for opt in options:
        if opt.name == name:
            return opt.value
    return None


def _probability(rule: Rule) -> float | None:
    for match in rule.matches:
        for opt in match.options:
            if opt.name == "--probability":
                try:
                    return float(opt.value)
                except ValueError:
                    return 0.0
    return None
