"""The compiler: a parsed Ruleset into the compiled chains of `engine`, once per ruleset.

`compile_ruleset(ruleset, unknown=..., indexed=True)` checks every value (bad ones raise
`InputError("file:line: ...")`), resolves jumps, refuses loops, and folds runs of rules into the
index's Blocks and Fans (`index.build_steps`). Chains are compiled in the order a packet meets
them (`_walk_order`) so that what one packet touches sits together in memory. The result is
walked by `chainwalk.walk`, through the hooks by `traversal`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from kplab.errors import located
from kplab.netfilter.bulk import gc_paused
from kplab.netfilter.engine import (
    ACCEPT,
    DROP,
    K_ACTION,
    K_GOTO,
    K_JUMP,
    K_NAT,
    K_VERDICT,
    CChain,
    CRule,
    Engine,
)
from kplab.netfilter.extensions import MAX_JUMP_DEPTH
from kplab.netfilter.index import MIN_BLOCK, build_steps
from kplab.netfilter.matches import PredCache, compile_matches
from kplab.netfilter.model import BUILTIN_CHAINS, Chain, Rule, Ruleset, Source, Table
from kplab.netfilter.state import RETURN, Env, Skb
from kplab.netfilter.targets import compile_target, nat_of
from kplab.packet import Packet

_VERDICTS = {"ACCEPT": ACCEPT, "DROP": DROP, "RETURN": RETURN}
_NAT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT"})


def compile_ruleset(
    ruleset: Ruleset, *, unknown: str = "error", indexed: bool = True, min_block: int | None = None
) -> Engine:
    """Compile every table of `ruleset`. Raises InputError for bad values and loops.

    `unknown` is the policy for matches and targets kplab does not know ("error", "never-match",
    "always-match"); `indexed` builds the fast path (runs of at least `min_block` keyed rules).
    """
    block = MIN_BLOCK if min_block is None else min_block
    slots = itertools.count()
    cache: PredCache = {}
    with gc_paused():
        tables = {
            table.name: _compile_table(table, unknown, indexed, block, slots, cache)
            for table in ruleset.tables.values()
        }
    return Engine(tables, indexed)


def _compile_table(
    table: Table, unknown: str, indexed: bool, block: int, slots: Iterator[int], cache: PredCache
) -> dict[str, CChain]:
    live = {name: chain for name, chain in table.chains.items() if name not in table.deleted}
    chains = _ChainSet(table.name, live)
    for name in _walk_order(table.name, live):
        cchain = chains[name]
        cchain.rules = [
            _compile_rule(i, rule, table.name, chains, unknown, slots, cache)
            for i, rule in enumerate(live[name].rules, 1)
        ]
        cchain.steps[:] = build_steps(cchain.rules, block, cache) if indexed else cchain.rules
    for name in BUILTIN_CHAINS.get(table.name, ()):
        chains.setdefault(name, CChain(name, table.name, ACCEPT, Source("<built-in>", 0)))
    _check_loops(chains, table.name)
    return dict(chains)


class _ChainSet(dict[str, CChain]):
    """Compiled chains, each made when first needed, so that it sits next to its rules in memory."""

    def __init__(self, table: str, live: dict[str, Chain]) -> None:
        super().__init__()
        self.table = table
        self.live = live

    def __missing__(self, name: str) -> CChain:
        made = self[name] = _new_chain(self.table, self.live[name])
        return made

    def has(self, name: str) -> bool:
        return name in self.live


def _walk_order(table: str, live: dict[str, Chain]) -> list[str]:
    """Chains in depth-first order of jumps from the built-in chains, then the rest.

    Compiling in this order puts a Service's KUBE-SVC and KUBE-SEP rules next to each other in
    memory, which is what a packet touches; on large rulesets that halves the cache misses.
    """
    order: list[str] = []
    seen: set[str] = set()
    stack = [name for name in reversed(BUILTIN_CHAINS.get(table, ())) if name in live]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        order.append(name)
        targets = [r.target.name for r in live[name].rules if r.target is not None and r.target.name in live]
        stack.extend(reversed(targets))
    order.extend(name for name in live if name not in seen)
    return order


def _new_chain(table: str, chain: Chain) -> CChain:
    policy = DROP if chain.policy == "DROP" else ACCEPT
    return CChain(chain.name, table, policy, chain.source)


def _compile_rule(
    number: int,
    rule: Rule,
    table: str,
    chains: _ChainSet,
    unknown: str,
    slots: Iterator[int],
    cache: PredCache,
) -> CRule:
    crule = CRule(number, rule, compile_matches(rule, table, unknown, slots, cache))
    target = rule.target
    if target is None:
        return crule
    if chains.has(target.name):
        crule.kind = K_GOTO if target.goto else K_JUMP
        crule.chain = chains[target.name]
        crule.steps = crule.chain.steps  # filled in place when the target chain is compiled
    elif target.goto:
        raise located(rule.source.file, rule.source.line, f"goto to unknown chain '{target.name}'")
    elif target.name in _VERDICTS and not target.options:
        crule.kind, crule.verdict = K_VERDICT, _VERDICTS[target.name]
    elif target.name in _NAT_TARGETS:
        try:
            crule.kind, crule.nat = K_NAT, nat_of(target.name, {o.name: o.values for o in target.options})
        except ValueError as exc:
            raise located(rule.source.file, rule.source.line, str(exc)) from None
    else:
        action = compile_target(rule, target, unknown)
        if action is None:
            crule.preds = (*crule.preds, _never)
        else:
            crule.kind, crule.action = K_ACTION, action
    return crule


def _never(p: Packet, s: Skb, e: Env) -> bool:
    return False


def _check_loops(chains: dict[str, CChain], table: str) -> None:
    """Refuse a chain that can reach itself (iptables-restore refuses it too: ELOOP) and one that
    sits MAX_JUMP_DEPTH jumps below a built-in chain (nf_tables refuses it: EMLINK). Iterative:
    a dump may chain thousands of jumps."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    done: list[CChain] = []
    for root in chains.values():
        if root.name in state:
            continue
        state[root.name] = 1
        stack = [(root, iter(root.rules))]
        while stack:
            chain, pending = stack[-1]
            for crule in pending:
                target = crule.chain
                if target is None or state.get(target.name) == 2:
                    continue
                if state.get(target.name) == 1:
                    src = crule.rule.source
                    raise located(src.file, src.line, f"loop: chain '{target.name}' reaches itself")
                state[target.name] = 1
                stack.append((target, iter(target.rules)))
                break
            else:
                state[chain.name] = 2
                done.append(chain)
                stack.pop()
    depth = {name: 0 for name in BUILTIN_CHAINS.get(table, ()) if name in chains}
    for chain in reversed(done):  # jumps only go forward in this order (no loops)
        level = depth.get(chain.name)
        if level is None:
            continue
        for crule in chain.rules:
            target = crule.chain
            if target is None:
                continue
            if level + 1 >= MAX_JUMP_DEPTH:
                src = crule.rule.source
                why = f"nf_tables refuses {MAX_JUMP_DEPTH} or more (Too many links)"
                raise located(src.file, src.line, f"chain '{target.name}' is {level + 1} jumps deep: {why}")
            depth[target.name] = max(depth.get(target.name, 0), level + 1)
