"""`kplab trace --nft`: one packet through an nftables ruleset, stateful or as kube-proxy's own
nftables test tracer (`tracePacket` in pkg/proxy/nftables/helpers_test.go) sees it.

Stateful: the node's hooks (`traversal.HookWalker` over `walk.nft_base_chains`) with the stand-in
tracker in the chosen ctstate.
`numgen random mod N` draws from a seeded RNG, or, with `all_branches`, every draw is enumerated and
each combination becomes an outcome with its probability (1/N per draw: numgen is uniform).

Stateless (upstream's tracer): `filter-prerouting-pre-dnat` (`filter-prerouting` before v1.34) of
`table ip|ip6 kube-proxy`, stop on a verdict; `nat-prerouting`; the destination becomes the first
outcome's address (port unchanged); `filter-forward`, stop on a verdict; `filter-input`. `ct state
new` holds, LOCAL (`fib ... type local`) is the node's addresses only, `jump mark-for-masquerade`
only sets the masquerade flag, a `numgen` vmap runs every branch (each an outcome, probability
1/N), a DNAT, `drop` or `reject` records an outcome and ends that branch, dynamic sets are empty.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import TypeVar

from kplab.errors import InputError
from kplab.netfilter.ctview import CtView
from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.hooks import NodeVerdict
from kplab.netfilter.nft.compile import NftEngine
from kplab.netfilter.nft.evaluate import _entry
from kplab.netfilter.nft.ops import (
    ACCEPT,
    BREAK,
    DROP,
    GOTO,
    JUMP,
    RETURN,
    CChain,
    CRule,
    Ctx,
    LoadNumgen,
    NatOp,
    RejectOp,
    VerdictOp,
    VMapOp,
)
from kplab.netfilter.nft.values import format_addr
from kplab.netfilter.nft.walk import node_walker
from kplab.netfilter.standin import StandInTracker
from kplab.netfilter.state import EngineState, Env, Skb
from kplab.netfilter.tracenotes import reason_of
from kplab.netfilter.tracer import MAX_BRANCHES, Outcome, Probe, TraceReport, probe_start, report_of
from kplab.packet import Packet

R = TypeVar("R")
MASQ_CHAIN = "mark-for-masquerade"


def fmt_endpoint(addr: int, port: int, family: int) -> str:
    host = format_addr(addr, family)
    return f"[{host}]:{port}" if family == 6 else f"{host}:{port}"


# -- stateful ---------------------------------------------------------------------------------------


def trace_nft(engine: NftEngine, probe: Probe, *, seed: int = 0, all_branches: bool = False) -> TraceReport:
    if all_branches:
        runs = enumerate_picks(lambda pick: _run(engine, probe, pick))
    else:
        rng = random.Random(seed)
        draws: list[int] = []

        def pick(n: int) -> int:
            draws.append(n)
            return (rng.getrandbits(32) * n) >> 32

        outcome = _run(engine, probe, pick)
        probability = 1.0
        for n in draws:
            probability /= n
        runs = [(probability, outcome)]
    outcomes = [_outcome(result, pkt, probe, p) for p, (result, pkt) in runs]
    return report_of(outcomes)


def _run(engine: NftEngine, probe: Probe, pick: Callable[[int], int]) -> tuple[NodeVerdict, Packet]:
    pkt, skb, node = probe_start(probe)
    walker = node_walker(
        engine,
        None,
        node,
        StandInTracker(probe.ctstate),
        EngineState.seeded(0),
        family=probe.family,
        pick=pick,
        traced=True,
    )
    return walker.evaluate(pkt, skb, 0, probe.local_out), pkt


def _outcome(result: NodeVerdict, pkt: Packet, probe: Probe, probability: float) -> Outcome:
    fam = probe.family
    dnat = fmt_endpoint(pkt.dst, pkt.dport, fam) if (pkt.dst, pkt.dport) != (probe.dst, probe.dport) else None
    snat = fmt_endpoint(pkt.src, pkt.sport, fam) if (pkt.src, pkt.sport) != (probe.src, probe.sport) else None
    return Outcome(
        dnat, result.verdict, result.masquerade, probability, snat, result.trace, reason_of(result)
    )


def enumerate_picks(run: Callable[[Callable[[int], int]], R]) -> list[tuple[float, R]]:
    """`run(pick)` once per combination of draws (`pick(n)` -> 0..n-1), in branch order."""
    results: list[tuple[float, R]] = []
    pending: list[tuple[int, ...]] = [()]
    while pending:
        if len(results) >= MAX_BRANCHES:
            raise InputError(f"trace: more than {MAX_BRANCHES} random branches")
        prefix = pending.pop()
        made: list[tuple[int, int]] = []

        def pick(n: int, prefix: tuple[int, ...] = prefix, made: list[tuple[int, int]] = made) -> int:
            index = len(made)
            if index < len(prefix):
                choice = prefix[index]
            else:
                choice = 0
                taken = tuple(c for c, _ in made)
                pending.extend((*taken, alt) for alt in range(n - 1, 0, -1))
            made.append((choice, n))
            return choice

        value = run(pick)
        probability = 1.0
        for _, n in made:
            probability /= n
        results.append((probability, value))
    return results


# -- stateless (upstream's tracer) ------------------------------------------------------------------

_END, _LEAVE, _GO_ON = 1, 2, 3


class _Stateless:
    def __init__(self, engine: NftEngine, table: str, ctx: Ctx) -> None:
        self.engine, self.table, self.ctx = engine, table, ctx
        self.outcomes: list[Outcome] = []
        self.masquerade = False
        self.path: list[TraceEntry] = []

    def chain(self, name: str, probability: float) -> bool:
        """Run a chain by name; True if the packet ended in it. A missing chain does nothing."""
        chain = self.engine.chain(self.table, name)
        return chain is not None and self.run(chain, probability)

    def run(self, chain: CChain, probability: float) -> bool:
        for crule in chain.rules:
            what = self.rule(chain, crule, probability)
            if what == _END:
                return True
            if what == _LEAVE:
                return False
        return False

    def record(self, verdict: str | None, dnat: str | None, probability: float) -> int:
        self.outcomes.append(Outcome(dnat, verdict, self.masquerade, probability, None, list(self.path)))
        return _END

    def verdict(self, chain: CChain, op: VerdictOp, probability: float) -> int:
        code = op.code
        if code in (JUMP, GOTO):
            target = op.chain
            assert target is not None
            if code == JUMP and target.name == MASQ_CHAIN:
                self.masquerade = True
                return _GO_ON
            if self.run(target, probability):
                return _END
            return _LEAVE if code == GOTO else _GO_ON
        if code == RETURN:
            return _LEAVE
        if code == DROP:
            return self.record("DROP", None, probability)
        if code == ACCEPT:
            return _END
        return _GO_ON

    def rule(self, chain: CChain, crule: CRule, probability: float) -> int:
        c = self.ctx
        for op in crule.ops:
            if isinstance(op, VerdictOp | VMapOp | NatOp | RejectOp):
                self.path.append(_entry(chain, crule))
            if isinstance(op, VerdictOp):
                what = self.verdict(chain, op, probability)
                if what != _GO_ON:
                    return what
                continue
            if isinstance(op, VMapOp):
                if isinstance(op.load, LoadNumgen):
                    branches = sorted(op.cset.exact.items(), key=lambda kv: kv[0])  # type: ignore[arg-type,return-value]
                    share = probability / op.load.mod
                    for _, target in branches:
                        if isinstance(target, VerdictOp):
                            self.verdict(chain, target, share)
                    return _END
                key = op.load.get(c)
                found = op.cset.find(key, c) if key is not None else None
                if not isinstance(found, VerdictOp):
                    self.path.pop()
                    return _GO_ON
                return self.verdict(chain, found, probability)
            if isinstance(op, NatOp):
                nat = op.nat
                if nat.kind != "DNAT" or nat.addr_min is None:
                    return _END
                port = nat.port_min if nat.port_min is not None else c.pkt.dport
                return self.record(None, fmt_endpoint(nat.addr_min, port, c.family), probability)
            if isinstance(op, RejectOp):
                return self.record("REJECT", None, probability)
            if op.run(c) == BREAK:
                return _GO_ON
        return _GO_ON


def trace_nft_stateless(engine: NftEngine, probe: Probe) -> TraceReport:
    table = f"{'ip' if probe.family == 4 else 'ip6'} kube-proxy"
    if table not in engine.tables:
        raise InputError(f"{engine.file}: --stateless: no table '{table}' (kube-proxy's) in the ruleset")
    pkt = Packet(probe.src, probe.dst, probe.proto, probe.sport, probe.dport)
    env = Env(0, EngineState.seeded(0), frozenset(probe.node_ips))
    skb = Skb(in_iface=probe.in_iface or "eth0", ct=CtView("NEW"))
    tracer = _Stateless(engine, table, Ctx(pkt, skb, env, probe.family, None, loopback_local=False))
    first = (
        "filter-prerouting-pre-dnat"
        if engine.chain(table, "filter-prerouting-pre-dnat")
        else "filter-prerouting"
    )
    if not tracer.chain(first, 1.0):
        tracer.chain("nat-prerouting", 1.0)
        dnats = [o.dnat for o in tracer.outcomes if o.dnat is not None]
        if tracer.outcomes and tracer.outcomes[0].dnat is not None:
            pkt.dst = _host(dnats[0], probe.family)
        if not tracer.chain("filter-forward", 1.0):
            tracer.chain("filter-input", 1.0)
    outcomes = tracer.outcomes
    verdict = next((o.verdict for o in outcomes if o.verdict is not None), "ACCEPT")
    dnat = next((o.dnat for o in outcomes if o.dnat is not None), None)
    return TraceReport(verdict, dnat, None, tracer.masquerade, outcomes, tracer.path)


def _host(endpoint: str, family: int) -> int:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    return int(ipaddress.ip_address(host))


__all__ = ["Probe", "enumerate_picks", "trace_nft", "trace_nft_stateless"]
