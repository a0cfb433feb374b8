"""iptables' tables at the hooks: each built-in chain of a compiled ruleset is a base chain at its
table's priority (`iptable_raw`, `iptable_mangle`, `iptable_nat`, `iptable_filter`,
`iptable_security` register at NF_IP_PRI_RAW, _MANGLE, _NAT_DST/_NAT_SRC, _FILTER, _SECURITY).
"""

from __future__ import annotations

from typing import Final

from kplab.netfilter.chainwalk import walk
from kplab.netfilter.engine import CChain, Engine, TraceEntry
from kplab.netfilter.hooks import (
    ACCEPT,
    PRI_FILTER,
    PRI_MANGLE,
    PRI_NAT_DST,
    PRI_NAT_SRC,
    PRI_RAW,
    PRI_SECURITY,
    BaseChain,
    Hook,
)
from kplab.netfilter.state import Env, Skb
from kplab.packet import Packet

# (table, hook) -> priority, for every hook each table registers at (its valid_hooks).
_PRE, _IN, _FWD, _OUT, _POST = Hook.PREROUTING, Hook.INPUT, Hook.FORWARD, Hook.OUTPUT, Hook.POSTROUTING
TABLE_HOOKS: Final[dict[str, dict[Hook, int]]] = {
    "raw": {_PRE: PRI_RAW, _OUT: PRI_RAW},
    "mangle": {_PRE: PRI_MANGLE, _IN: PRI_MANGLE, _FWD: PRI_MANGLE, _OUT: PRI_MANGLE, _POST: PRI_MANGLE},
    "nat": {_PRE: PRI_NAT_DST, _IN: PRI_NAT_SRC, _OUT: PRI_NAT_DST, _POST: PRI_NAT_SRC},
    "filter": {_IN: PRI_FILTER, _FWD: PRI_FILTER, _OUT: PRI_FILTER},
    "security": {_IN: PRI_SECURITY, _FWD: PRI_SECURITY, _OUT: PRI_SECURITY},
}


class TableChain(BaseChain):
    """One table's built-in chain for one hook, walked like `ipt_do_table` (`chainwalk.walk`)."""

    __slots__ = ("chain",)

    def __init__(self, chain: CChain, hook: Hook, priority: int) -> None:
        super().__init__(hook, priority, chain.table, chain.name, nat=chain.table == "nat")
        self.chain = chain

    def evaluate(self, pkt: Packet, skb: Skb, env: Env, trace: list[TraceEntry] | None) -> int:
        return walk(self.chain, pkt, skb, env, trace)

    def inert(self) -> bool:
        return not self.chain.rules and self.chain.policy == ACCEPT


def base_chains(engine: Engine) -> list[BaseChain]:
    """The ruleset's built-in chains as base chains, for every hook their table registers at."""
    found: list[BaseChain] = []
    for table, hooks in TABLE_HOOKS.items():
        for hook, priority in hooks.items():
            chain = engine.chain(table, hook.value)
            if chain is not None:
                found.append(TableChain(chain, hook, priority))
    return found
