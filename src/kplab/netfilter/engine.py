"""The compiled ruleset: the types the compiler (`compiler`) makes and the walkers read.

`Engine` holds the compiled tables (`tables[table][chain]`); a `CChain` holds its `CRule`s and
the `steps` the chain walker (`chainwalk`) takes: the rules themselves, or runs of them folded by
the index (`index`) into a `Block` (rules under a key of the packet) or a `Fan` (a run of random
draws). `CRule.kind` says what a matching rule does (the `K_*` constants). `TraceEntry` is one
line of a trace. Nothing here holds per-packet or per-node state: matches keep theirs in
`Env.state`, so one compiled engine can serve any number of walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from kplab.netfilter.ctview import Nat
from kplab.netfilter.iptables_save import render_rule
from kplab.netfilter.matches import Pred
from kplab.netfilter.model import Rule, Source
from kplab.netfilter.state import CONTINUE, Verdict
from kplab.netfilter.targets import Action

# What a matching rule does (`CRule.kind`).
K_NONE: Final = 0  # nothing (no target): the next rule
K_VERDICT: Final = 1  # ACCEPT, DROP or RETURN (`CRule.verdict`)
K_JUMP: Final = 2  # -j CHAIN (`CRule.chain`, `CRule.steps`)
K_GOTO: Final = 3  # -g CHAIN
K_ACTION: Final = 4  # a target with an effect (`CRule.action` returns the verdict or CONTINUE)
K_NAT: Final = 5  # DNAT/SNAT/MASQUERADE/REDIRECT (`CRule.nat`)
ACCEPT: Final = int(Verdict.ACCEPT)
DROP: Final = int(Verdict.DROP)


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
    """Compiled tables: `tables[table][chain]`; `indexed` when the chains have the index's steps."""

    tables: dict[str, dict[str, CChain]]
    indexed: bool

    def chain(self, table: str, chain: str) -> CChain | None:
        chains = self.tables.get(table)
        return None if chains is None else chains.get(chain)
