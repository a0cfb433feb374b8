"""A Ruleset compiled once into chains of predicates and actions, and the chain walk itself.

`compile_ruleset(ruleset, unknown=..., indexed=True)` checks every value (bad ones raise
`InputError("file:line: ...")`), resolves jumps, refuses loops, and builds the fast-path index
(`kplab.netfilter.index`). `Engine.run_chain` walks one built-in chain the way `ipt_do_table`
does: first match wins, `-j CHAIN` pushes a return point, `-g CHAIN` does not, RETURN or the end
of a user chain pops, the end of a built-in chain (or a RETURN with nothing to pop) applies the
policy. The compiled engine holds no state: matches keep theirs in `Env.state`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from kplab.errors import located
from kplab.netfilter.bulk import gc_paused
from kplab.netfilter.ctview import Nat
from kplab.netfilter.extensions import MAX_JUMP_DEPTH
from kplab.netfilter.iptables_save import render_rule
from kplab.netfilter.matches import Pred, PredCache, compile_matches
from kplab.netfilter.model import BUILTIN_CHAINS, Chain, Rule, Ruleset, Source, Table
from kplab.netfilter.state import CONTINUE, RETURN, Env, Skb, Verdict
from kplab.netfilter.targets import NEVER, Action, compile_target, nat_of
from kplab.packet import Packet

K_NONE, K_VERDICT, K_JUMP, K_GOTO, K_ACTION, K_NAT = range(6)
ACCEPT, DROP = int(Verdict.ACCEPT), int(Verdict.DROP)
_VERDICTS = {"ACCEPT": ACCEPT, "DROP": DROP, "RETURN": RETURN}
_EMPTY: tuple[CRule, ...] = ()
_NAT_TARGETS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT"})


@dataclass(slots=True, eq=False)
class CRule:
    """A compiled rule: predicates that must all hold, then what to do."""

    number: int  # 1-based position in its chain (the TRACE "rule:N")
    rule: Rule
    preds: tuple[Pred, ...]
    kind: int = K_NONE
    verdict: int = CONTINUE
    chain: CChain | None = None
    action: Action | None = None
    nat: Nat | None = None  # K_NAT: the decision of a DNAT/SNAT/MASQUERADE/REDIRECT rule
    steps: list[Step] = field(default_factory=list)  # K_JUMP/K_GOTO: `chain.steps`, the same list

    @property
    def text(self) -> str:
        return render_rule(self.rule, counters=False)


@dataclass(slots=True, eq=False)
class Block:
    """A run of consecutive rules indexed by a key of the packet (see `kplab.netfilter.index`)."""

    key_kind: int  # 0: (dst, proto, dport); 1: (proto, dport)
    table: dict[tuple[int, ...], CRule | tuple[CRule, ...]]  # one rule bare, several in a tuple
    size: int


@dataclass(slots=True, eq=False)
class Fan:
    """A run of rules that each only draw `statistic --mode random` and jump (kube-proxy's choice of
    an endpoint): the walk makes the same draws, in order, from `fixed` without visiting each rule;
    `hits[i]` is rule i with its draw done, `rules` the run as written (to resume after a return)."""

    fixed: tuple[int, ...]
    hits: tuple[CRule, ...]
    rules: tuple[CRule, ...]


Step = CRule | Block | Fan


@dataclass(slots=True, eq=False)
class CChain:
    name: str
    table: str
    policy: int  # for built-in chains; user chains return
    source: Source
    rules: list[CRule] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One line of a trace: a rule that matched (`rule`), the end of a user chain (`return`) or a
    built-in chain's policy (`policy`), as `iptables -j TRACE` prints `table:chain:kind:N`."""

    table: str
    chain: str
    kind: str
    number: int
    rule: Rule | None = None
    source: Source | None = None
    verdict: str | None = None
    detail: str | None = None  # the rule's text when it is not an iptables Rule (nftables)

    @property
    def text(self) -> str:
        if self.detail is not None:
            return self.detail
        if self.rule is not None:
            return render_rule(self.rule, counters=False)
        return f"policy {self.verdict}" if self.kind == "policy" else "return"


@dataclass(slots=True)
class Engine:
    """Compiled tables: `tables[table][chain]`."""

    tables: dict[str, dict[str, CChain]]
    indexed: bool
    _active: dict[tuple[str, tuple[str, ...]], tuple[CChain, ...]] = field(default_factory=dict)

    def chain(self, table: str, chain: str) -> CChain | None:
        chains = self.tables.get(table)
        return None if chains is None else chains.get(chain)

    def active(self, hook: str, tables: tuple[str, ...]) -> tuple[CChain, ...]:
        """The built-in chains of `hook` in these tables that can change anything: not missing, and
        not empty with an ACCEPT policy. Walking the others only ever gives ACCEPT (the emulator's
        fast path skips them; a traced walk still visits them for their `policy` lines)."""
        key = (hook, tables)
        found = self._active.get(key)
        if found is None:
            chains = (self.chain(t, hook) for t in tables)
            found = self._active[key] = tuple(
                c for c in chains if c is not None and (c.rules or c.policy != ACCEPT)
            )
        return found

    def run_chain(
        self, start: CChain, pkt: Packet, skb: Skb, env: Env, trace: list[TraceEntry] | None = None
    ) -> int:
        """The verdict of `start` for the packet (ACCEPT, DROP, REJECT, QUEUE): `ipt_do_table`."""
        return walk(start, pkt, skb, env, trace)


def walk(start: CChain, pkt: Packet, skb: Skb, env: Env, trace: list[TraceEntry] | None) -> int:
    stack: list[tuple[CChain, int, tuple[CRule, ...] | None, int]] = []
    chain = start
    steps = chain.steps
    pos = 0
    cands: tuple[CRule, ...] | None = None
    ci = 0
    while True:
        if cands is not None:
            if ci < len(cands):
                crule = cands[ci]
                ci += 1
            else:
                cands = None
                continue
        elif pos < len(steps):
            step = steps[pos]
            pos += 1
            step_type = type(step)
            if step_type is Block:  # the fast path: only the rules under the packet's key
                if step.key_kind == 0:  # type: ignore[union-attr]
                    found = step.table.get((pkt.dst, pkt.proto, pkt.dport))  # type: ignore[union-attr]
                else:
                    found = step.table.get((pkt.proto, pkt.dport))  # type: ignore[union-attr]
                if found is None:
                    continue
                if type(found) is tuple:  # several rules under this key
                    cands, ci = found, 0
                    continue
                crule = found  # type: ignore[assignment]  # the usual case: one rule, stored bare
            elif step_type is Fan:
                hit = _draw(step, env)  # type: ignore[arg-type]
                if hit < 0:
                    continue
                crule = step.hits[hit]  # type: ignore[union-attr]
                cands, ci = step.rules, hit + 1  # type: ignore[union-attr]
            else:
                crule = step  # type: ignore[assignment]
        else:
            if not stack:
                return _policy(start, trace)
            if trace is not None:
                trace.append(TraceEntry(chain.table, chain.name, "return", len(chain.rules) + 1))
            chain, pos, cands, ci = stack.pop()
            steps = chain.steps
            continue
        for pred in crule.preds:
            if not pred(pkt, skb, env):
                break
        else:
            if trace is not None:
                trace.append(TraceEntry(chain.table, chain.name, "rule", crule.number, crule.rule))
            kind = crule.kind
            if kind == K_NONE:
                continue
            if kind in (K_JUMP, K_GOTO):
                if kind == K_JUMP:
                    stack.append((chain, pos, cands, ci))
                chain = crule.chain  # type: ignore[assignment]
                steps = crule.steps  # the target's steps, without touching the chain object
                pos, cands, ci = 0, None, 0
                continue
            if kind == K_NAT:  # nat targets: decide, accept (`xt_nat`, `masquerade_tg`, `redirect_tg`)
                nat = crule.nat
                skb.nat = nat
                if nat.kind == "MASQUERADE":  # type: ignore[union-attr]
                    skb.masqueraded = True
                return ACCEPT
            verdict = crule.verdict if kind == K_VERDICT else crule.action(pkt, skb, env)  # type: ignore[misc]
            if verdict == CONTINUE:
                continue
            if verdict == RETURN:
                if not stack:
                    return _policy(start, trace)
                chain, pos, cands, ci = stack.pop()
                steps = chain.steps
                continue
            return verdict


def _draw(fan: Fan, env: Env) -> int:
    """The first rule of the fan whose draw succeeds (`statistic_mt`), or -1."""
    chooser = env.chooser
    if chooser is not None:
        for index, fixed in enumerate(fan.fixed):
            if chooser(fixed):
                return index
        return -1
    bits = env.state.rng.getrandbits
    for index, fixed in enumerate(fan.fixed):
        if bits(31) < fixed:
            return index
    return -1


def _policy(chain: CChain, trace: list[TraceEntry] | None) -> int:
    if trace is not None:
        name = "ACCEPT" if chain.policy == ACCEPT else "DROP"
        trace.append(
            TraceEntry(chain.table, chain.name, "policy", len(chain.rules) + 1, None, chain.source, name)
        )
    return chain.policy


def compile_ruleset(
    ruleset: Ruleset, *, unknown: str = "error", indexed: bool = True, min_block: int | None = None
) -> Engine:
    """Compile every table of `ruleset`. Raises InputError for bad values and loops.

    `unknown` is the policy for matches and targets kplab does not know ("error", "never-match",
    "always-match"); `indexed` builds the fast path (runs of at least `min_block` keyed rules).
    """
    from kplab.netfilter.index import MIN_BLOCK

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
    from kplab.netfilter.index import build_steps

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
        if action is NEVER:
            crule.preds = (*crule.preds, _never)
        else:
            crule.kind, crule.action = K_ACTION, action  # type: ignore[assignment]
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
