"""`kplab trace` as a library: one packet through a ruleset, stateful or kube-proxy-stateless.

`trace_stateful(...)`/`trace_stateless_report(...)` return a `TraceReport` whose `to_json()` has
exactly the keys of `kplab trace -o json`: verdict, reason, dnat, snat, masquerade, warnings,
outcomes[{dnat, verdict, reason, masquerade, probability}], path[{table, chain, rule_number, line,
rule}]. `reason` says why the walk stopped or where the packet went (`tracenotes.reason_of`);
`warnings` what was assumed (a default node address, a NodePort missed, ipsets without
membership).

Stateful mode walks the node's hooks (`traversal.evaluate_node`) with the stand-in tracker in the
chosen ctstate. Random draws (`statistic --mode random`) come from a seeded RNG, or, with
`all_branches`, every combination of draws is run once and becomes an outcome with its
probability (computed from the probability the kernel stores, round(P * 2^31) / 2^31).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kplab.errors import InputError
from kplab.netfilter.engine import Engine, TraceEntry
from kplab.netfilter.hooks import NodeVerdict
from kplab.netfilter.ipset import IpSets
from kplab.netfilter.model import Ruleset
from kplab.netfilter.node import NodeNet
from kplab.netfilter.standin import StandInTracker
from kplab.netfilter.state import EngineState, Skb
from kplab.netfilter.stateless import trace_stateless
from kplab.netfilter.tracenotes import reason_of
from kplab.netfilter.traversal import evaluate_node
from kplab.packet import PROTO_NAMES, Packet, fmt_ip, fmt_ipport

R = TypeVar("R")
MAX_BRANCHES = 4096
FIXED_ONE = 0x80000000


@dataclass(slots=True)
class Outcome:
    dnat: str | None
    verdict: str | None
    masquerade: bool
    probability: float
    snat: str | None = None
    path: list[TraceEntry] = field(default_factory=list)
    reason: str = ""


@dataclass(slots=True)
class TraceReport:
    verdict: str
    dnat: str | None
    snat: str | None
    masquerade: bool
    outcomes: list[Outcome]
    path: list[TraceEntry]
    reason: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "dnat": self.dnat,
            "snat": self.snat,
            "masquerade": self.masquerade,
            "warnings": list(self.warnings),
            "outcomes": [
                {
                    "dnat": o.dnat,
                    "verdict": o.verdict,
                    "reason": o.reason,
                    "masquerade": o.masquerade,
                    "probability": o.probability,
                }
                for o in self.outcomes
            ],
            "path": [path_entry(e) for e in self.path],
        }


def path_entry(entry: TraceEntry) -> dict[str, Any]:
    source = entry.rule.source if entry.rule is not None else entry.source
    return {
        "table": entry.table,
        "chain": entry.chain,
        "rule_number": entry.number,
        "line": source.line if source is not None else None,
        "rule": entry.text,
    }


@dataclass(frozen=True, slots=True)
class Probe:
    """The packet to trace and the node it meets."""

    src: int
    dst: int
    proto: int
    sport: int
    dport: int
    node_ips: tuple[int, ...] = ()
    ctstate: str = "NEW"
    in_iface: str | None = None  # None: "eth0", or locally generated when src is a node IP
    net: NodeNet | None = None  # the node's interfaces and routes (default: node_ips on eth0)
    sets: IpSets | None = None  # ipset membership (`ipset save`)
    family: int = 4  # 4 or 6 (IPv6: nftables only)

    @property
    def local_out(self) -> bool:
        if self.in_iface is not None:
            return False
        return self.src in self.node_ips or (self.net is not None and self.net.is_local(self.src))


def arrival_iface(net: NodeNet | None) -> str:
    """Where a packet arrives when --in-iface is not given: the default route's interface, else eth0."""
    if net is not None:
        for route in net.routes:
            if route.mask == 0 and route.dev:
                return route.dev
    return "eth0"


def trace_stateless_report(ruleset: Ruleset, probe: Probe) -> TraceReport:
    """kube-proxy's stateless tracer view (`kplab.netfilter.stateless`) as a report."""
    result = trace_stateless(
        ruleset,
        fmt_ip(probe.src),
        PROTO_NAMES.get(probe.proto, str(probe.proto)),
        fmt_ip(probe.dst),
        probe.dport,
        [fmt_ip(a) for a in probe.node_ips],
    )
    outcomes = [
        Outcome(b.dnat, b.verdict, b.masquerade, b.probability, None, b.path) for b in result.outcomes
    ]
    verdict = next((o.verdict for o in outcomes if o.verdict is not None), "ACCEPT")
    dnat = next((o.dnat for o in outcomes if o.dnat is not None), None)
    return fill_reasons(TraceReport(verdict, dnat, None, result.masquerade, outcomes, result.path))


def fill_reasons(report: TraceReport) -> TraceReport:
    """Reasons for a report whose walk gave none (the stateless tracers): the rule that decided each
    outcome, and for the report the first decided outcome's, else what the walk did."""
    for outcome in report.outcomes:
        if not outcome.reason:
            outcome.reason = _stateless_reason(outcome.verdict, outcome.path)
    if not report.reason:
        decided = next((o.reason for o in report.outcomes if o.verdict is not None and o.reason), "")
        fallback = f"no rule decided: DNAT to {report.dnat}" if report.dnat else "no rule decided the verdict"
        report.reason = decided or fallback
    return report


def _stateless_reason(verdict: str | None, path: list[TraceEntry]) -> str:
    if verdict is None:
        return ""
    last = next((e for e in reversed(path) if e.kind == "rule"), None)
    if last is None:
        return verdict
    source = last.rule.source if last.rule is not None else last.source
    at = f" ({source.file}:{source.line})" if source is not None and source.line else ""
    return f"{verdict}: rule {last.table}:{last.chain}:rule:{last.number}{at}: {last.text}"


def trace_stateful(engine: Engine, probe: Probe, *, seed: int = 0, all_branches: bool = False) -> TraceReport:
    """The packet through the node's hooks; one seeded run, or every branch of the random draws."""
    if all_branches:
        runs = enumerate_branches(lambda chooser: _run(engine, probe, chooser))
    else:
        rng = random.Random(seed)
        decisions: list[tuple[bool, float]] = []

        def draw(fixed: int) -> bool:
            taken = rng.getrandbits(31) < fixed
            decisions.append((taken, fixed / FIXED_ONE))
            return taken

        outcome = _run(engine, probe, draw)
        runs = [(_probability(decisions), outcome)]
    outcomes = [_outcome(result, pkt, probe, p) for p, (result, pkt) in runs]
    return report_of(outcomes)


def report_of(outcomes: list[Outcome]) -> TraceReport:
    """A stateful trace's report: the first outcome's verdict, NAT, path and reason; masquerade if any
    branch masquerades. Shared by the iptables and the nft tracers."""
    first = outcomes[0]
    return TraceReport(
        first.verdict or "ACCEPT",
        first.dnat,
        first.snat,
        any(o.masquerade for o in outcomes),
        outcomes,
        first.path,
        first.reason,
    )


def probe_start(probe: Probe) -> tuple[Packet, Skb, NodeNet]:
    """The probe's first packet (a SYN for TCP), its skb (arrival interface, or locally generated)
    and the node it meets: shared by the iptables and nftables tracers."""
    pkt = Packet(
        probe.src, probe.dst, probe.proto, probe.sport, probe.dport, flags=0x02 if probe.proto == 6 else 0
    )
    node = probe.net if probe.net is not None else NodeNet.simple(probe.node_ips)
    skb = Skb(in_iface=None if probe.local_out else (probe.in_iface or arrival_iface(probe.net)))
    return pkt, skb, node


def _run(engine: Engine, probe: Probe, chooser: Callable[[int], bool]) -> tuple[NodeVerdict, Packet]:
    pkt, skb, node = probe_start(probe)
    tracker = StandInTracker(probe.ctstate)
    sets = probe.sets.lookup if probe.sets is not None else None
    result = evaluate_node(
        engine,
        node,
        pkt,
        skb,
        EngineState.seeded(0),
        0,
        tracker,
        local_out=probe.local_out,
        sets=sets,
        chooser=chooser,
    )
    return result, pkt


def _outcome(result: NodeVerdict, pkt: Packet, probe: Probe, probability: float) -> Outcome:
    dnat = fmt_ipport(pkt.dst, pkt.dport) if (pkt.dst, pkt.dport) != (probe.dst, probe.dport) else None
    snat = fmt_ipport(pkt.src, pkt.sport) if (pkt.src, pkt.sport) != (probe.src, probe.sport) else None
    return Outcome(
        dnat, result.verdict, result.masquerade, probability, snat, result.trace, reason_of(result)
    )


def _probability(decisions: Iterable[tuple[bool, float]]) -> float:
    total = 1.0
    for taken, p in decisions:
        total *= p if taken else 1.0 - p
    return total


def enumerate_branches(run: Callable[[Callable[[int], bool]], R]) -> list[tuple[float, R]]:
    """Run `run(chooser)` once per combination of random draws, depth first, taken branch first.

    `chooser(fixed)` answers a draw of probability fixed / 2^31; draws that cannot go the other
    way (probability 0 or 1) do not branch.
    """
    results: list[tuple[float, R]] = []
    pending: list[tuple[bool, ...]] = [()]
    while pending:
        if len(results) >= MAX_BRANCHES:
            raise InputError(f"trace: more than {MAX_BRANCHES} random branches")
        replay = _Replay(pending.pop())
        value = run(replay.choose)
        results.append((_probability(replay.decisions), value))
        pending.extend(replay.branch_points)
    return results


class _Replay:
    """A chooser that follows `prefix`, then takes every new draw and notes the road not taken."""

    def __init__(self, prefix: tuple[bool, ...]) -> None:
        self.prefix = prefix
        self.decisions: list[tuple[bool, float]] = []
        self.branch_points: list[tuple[bool, ...]] = []

    def choose(self, fixed: int) -> bool:
        if fixed <= 0 or fixed >= FIXED_ONE:
            return fixed >= FIXED_ONE
        index = len(self.decisions)
        if index < len(self.prefix):
            taken = self.prefix[index]
        else:
            taken = True
            self.branch_points.append((*(d for d, _ in self.decisions), False))
        self.decisions.append((taken, fixed / FIXED_ONE))
        return taken
