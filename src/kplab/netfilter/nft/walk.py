"""nftables base chains at the hooks: each base chain of a compiled `NftEngine` is a `hooks.BaseChain`
(hook, priority, `type nat` or not), walked by `nft_do_chain` (`evaluate.run_chain`). The node's hook
walk itself is the one `traversal.HookWalker`: with `node_walker(nft, ipt, ...)` nft base chains and
iptables' tables are interleaved per hook by priority, around conntrack, the NAT core and confirm.
"""

from __future__ import annotations

from collections.abc import Callable

from kplab.netfilter.engine import Engine, TraceEntry
from kplab.netfilter.hooks import ACCEPT, BaseChain, Hook, Tracker
from kplab.netfilter.nft.compile import NftEngine
from kplab.netfilter.nft.evaluate import run_chain
from kplab.netfilter.nft.ops import CChain, Ctx
from kplab.netfilter.node import NodeNet
from kplab.netfilter.state import EngineState, Env, Skb
from kplab.netfilter.tables import base_chains
from kplab.netfilter.traversal import HookWalker
from kplab.packet import Packet


class NftBaseChain(BaseChain):
    """One nft base chain, for packets of one family (4 or 6). `pick` replaces `numgen random`'s
    draws (`pick(n) -> 0..n-1`); `loopback_local=False` is the stateless tracer's LOCAL."""

    __slots__ = ("chain", "family", "loopback_local", "pick")

    def __init__(
        self,
        chain: CChain,
        hook: Hook,
        family: int = 4,
        pick: Callable[[int], int] | None = None,
        loopback_local: bool = True,
    ) -> None:
        super().__init__(hook, chain.priority, chain.table, chain.name, nat=chain.type == "nat")
        self.chain, self.family, self.pick, self.loopback_local = chain, family, pick, loopback_local

    def evaluate(self, pkt: Packet, skb: Skb, env: Env, trace: list[TraceEntry] | None) -> int:
        return run_chain(self.chain, Ctx(pkt, skb, env, self.family, self.pick, self.loopback_local), trace)

    def inert(self) -> bool:
        return not self.chain.rules and self.chain.policy == ACCEPT


def nft_base_chains(
    nft: NftEngine, family: int = 4, pick: Callable[[int], int] | None = None, loopback_local: bool = True
) -> list[BaseChain]:
    """The engine's base chains that see packets of `family`, hook by hook, in the ruleset's order."""
    return [
        NftBaseChain(chain, hook, family, pick, loopback_local)
        for hook in Hook
        for chain in nft.base_chains(hook.value.lower(), family)
    ]


def node_walker(
    nft: NftEngine | None,
    ipt: Engine | None,
    node: NodeNet,
    tracker: Tracker,
    state: EngineState,
    *,
    family: int = 4,
    pick: Callable[[int], int] | None = None,
    chooser: Callable[[int], bool] | None = None,
    traced: bool = False,
) -> HookWalker:
    """A node whose rules are nft base chains, iptables tables, or both (iptables' registered first:
    at equal priorities the nft chain, registered later, runs first, as in the kernel)."""
    chains: list[BaseChain] = []
    if ipt is not None:
        chains += base_chains(ipt)
    if nft is not None:
        chains += nft_base_chains(nft, family, pick)
    return HookWalker(chains, node, tracker, state, None, chooser, traced=traced, family=family)
