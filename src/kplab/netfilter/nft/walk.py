"""A packet through a node whose rules are nftables base chains, iptables tables, or both, in the
kernel's order: per hook, every base chain by priority, with conntrack, NAT and confirm at theirs.

    prerouting  raw -300, conntrack -200, mangle -150, [nft at any priority], NAT (dst) -100,
                then routing: local -> input, else forward
    input       mangle -150, filter 0, security 50, NAT (src) 100, confirm last
    forward     mangle -150, filter 0, security 50, then postrouting
    output      routing, raw -300, conntrack -200, mangle -150, NAT (dst) -100, filter 0, security 50,
                re-routing if the destination changed, then postrouting (and, for a local
                destination, prerouting and input again with the same conntrack entry)
    postrouting mangle -150, NAT (src) 100, confirm last

NAT is the kernel's `nf_nat_inet_fn`: for a connection's first packet, the nat-type chains of the hook
(iptables' nat table and every nft `type nat` chain, by priority) run in turn until one binds;
later packets only get the binding applied. Equal priorities: iptables' table first (the order
is the registration order on a real node). A base chain's `accept` ends only that chain.

This is the walk `kplab trace --nft` uses; its steps and outcomes are `traversal._Walk`'s, over a
list of base-chain evaluators per hook instead of a fixed table list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kplab.netfilter.chainwalk import walk
from kplab.netfilter.ctview import CtDrop
from kplab.netfilter.engine import CChain as IptChain
from kplab.netfilter.engine import Engine, TraceEntry
from kplab.netfilter.hooks import (
    ACCEPT,
    DROP,
    REJECT,
    VERDICT_NAMES,
    Hook,
    Manip,
    NodeVerdict,
    Tracker,
    _complete,
    _Stop,
)
from kplab.netfilter.nft.compile import NftEngine
from kplab.netfilter.nft.evaluate import run_chain
from kplab.netfilter.nft.ops import CChain as NftChain
from kplab.netfilter.nft.ops import Ctx
from kplab.netfilter.node import NodeNet
from kplab.netfilter.state import EngineState, Env, Skb
from kplab.packet import Packet

IPT_PRIORITY = {"raw": -300, "mangle": -150, "nat": 0, "filter": 0, "security": 50}
CONNTRACK_PRIORITY = -200
NAT_DST_PRIORITY, NAT_SRC_PRIORITY = -100, 100
_IPT_TABLES = {
    Hook.PREROUTING: ("raw", "mangle"),
    Hook.INPUT: ("mangle", "filter", "security"),
    Hook.FORWARD: ("mangle", "filter", "security"),
    Hook.OUTPUT: ("raw", "mangle", "filter", "security"),
    Hook.POSTROUTING: ("mangle",),
}
_NAT = {
    Hook.PREROUTING: (Manip.DST, NAT_DST_PRIORITY),
    Hook.OUTPUT: (Manip.DST, NAT_DST_PRIORITY),
    Hook.INPUT: (Manip.SRC, NAT_SRC_PRIORITY),
    Hook.POSTROUTING: (Manip.SRC, NAT_SRC_PRIORITY),
}
K_CHAIN, K_CONNTRACK, K_NAT, K_CONFIRM = range(4)
Chain = IptChain | NftChain


@dataclass(slots=True)
class Step:
    priority: int
    kind: int
    chain: Chain | None = None


@dataclass(slots=True)
class HookPlan:
    """What runs at each hook, in order, and the nat chains of each NAT step."""

    steps: dict[Hook, list[Step]] = field(default_factory=dict)
    nat: dict[Hook, list[Chain]] = field(default_factory=dict)


def plan(nft: NftEngine | None, ipt: Engine | None, family: int = 4) -> HookPlan:
    out = HookPlan()
    for hook in Hook:
        steps: list[Step] = []
        nat: list[tuple[int, int, Chain]] = []
        if ipt is not None:
            for name in _IPT_TABLES[hook]:
                chain = ipt.chain(name, hook.value)
                if chain is not None:
                    steps.append(Step(IPT_PRIORITY[name], K_CHAIN, chain))
            ipt_nat = ipt.chain("nat", hook.value)
            if ipt_nat is not None and hook in _NAT:
                nat.append((_NAT[hook][1], 0, ipt_nat))
        if nft is not None:
            for n, nchain in enumerate(nft.base_chains(hook.value.lower(), family), 1):
                if nchain.type == "nat":
                    nat.append((nchain.priority, n, nchain))
                else:
                    steps.append(Step(nchain.priority, K_CHAIN, nchain))
        if hook in (Hook.PREROUTING, Hook.OUTPUT):
            steps.append(Step(CONNTRACK_PRIORITY, K_CONNTRACK))
        if hook in _NAT:
            steps.append(Step(_NAT[hook][1], K_NAT))
        if hook in (Hook.INPUT, Hook.POSTROUTING):
            steps.append(Step(1 << 31, K_CONFIRM))
        # stable: on equal priorities iptables' tables (added first) come first, the core last
        steps.sort(key=lambda s: (s.priority, s.kind == K_NAT or s.kind == K_CONFIRM))
        out.steps[hook] = steps
        out.nat[hook] = [c for _, _, c in sorted(nat, key=lambda t: (t[0], t[1]))]
    return out


class NodeWalk:
    """One node's hooks for one family; `run(pkt, skb, now_ns, local_out, trace)` per packet."""

    def __init__(
        self,
        nft: NftEngine | None,
        ipt: Engine | None,
        node: NodeNet,
        tracker: Tracker,
        state: EngineState,
        *,
        family: int = 4,
        pick: Callable[[int], int] | None = None,
        chooser: Callable[[int], bool] | None = None,
        loopback_local: bool = True,
    ) -> None:
        self.node, self.tracker, self.family = node, tracker, family
        self.plan = plan(nft, ipt, family)
        self.env: Env = node.env(0, state, None, chooser)
        self.pick, self.loopback_local = pick, loopback_local
        self.trace: list[TraceEntry] | None = None
        self.result = NodeVerdict("ACCEPT", "", Hook.PREROUTING)
        self.ctx = Ctx(Packet(0, 0), Skb(), self.env, family, pick, loopback_local)

    def run(
        self, pkt: Packet, skb: Skb, now_ns: int, local_out: bool = False, trace: bool = False
    ) -> NodeVerdict:
        self.node.bind_env(self.env, now_ns)
        self.result = result = NodeVerdict("ACCEPT", "", Hook.OUTPUT if local_out else Hook.PREROUTING)
        self.trace = result.trace if trace else None
        self.ctx = Ctx(pkt, skb, self.env, self.family, self.pick, self.loopback_local)
        try:
            result.delivery = self._output(pkt, skb) if local_out else self._incoming(pkt, skb, False)
        except _Stop as stop:
            result.verdict = VERDICT_NAMES.get(stop.verdict, str(stop.verdict))
            result.delivery, result.hook, result.reason = "dropped", stop.hook, stop.reason
            result.reject_with = skb.reject_with if stop.verdict == REJECT else None
        return result

    def _chain(self, chain: Chain, pkt: Packet, skb: Skb) -> int:
        if isinstance(chain, NftChain):
            return run_chain(chain, self.ctx, self.trace)
        return walk(chain, pkt, skb, self.env, self.trace)

    def _hook(self, hook: Hook, pkt: Packet, skb: Skb, looped: bool = False) -> None:
        for step in self.plan.steps[hook]:
            kind = step.kind
            if kind == K_CHAIN:
                assert step.chain is not None
                verdict = self._chain(step.chain, pkt, skb)
                if verdict != ACCEPT:
                    raise _Stop(verdict, hook)
            elif kind == K_CONNTRACK:
                if not looped:
                    self._conntrack(hook, pkt, skb)
            elif kind == K_NAT:
                self._nat(hook, pkt, skb)
            else:
                self._confirm(hook, pkt, skb)

    def _conntrack(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        if skb.ct is not None and skb.ct.state == "UNTRACKED":
            return
        try:
            skb.ct = self.tracker.lookup(pkt, skb, hook, self.env.now_ns)
        except CtDrop as drop:
            raise _Stop(DROP, hook, f"conntrack: {drop}") from None

    def _nat(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        manip = _NAT[hook][0]
        view = skb.ct
        if view is None or view.state == "UNTRACKED":
            return
        if self.tracker.nat_pending(view, manip):
            skb.nat = None
            for chain in self.plan.nat[hook]:
                verdict = self._chain(chain, pkt, skb)
                if verdict != ACCEPT:
                    raise _Stop(verdict, hook)
                if skb.nat is not None:
                    break
            decision = _complete(self.node, skb.nat, hook, skb)
            skb.nat = None
            if not self.tracker.bind_nat(view, manip, decision, pkt, self.env.now_ns):
                raise _Stop(DROP, hook, "no free NAT tuple")
            if decision is not None:
                if manip is Manip.DST:
                    self.result.dnat = decision
                else:
                    self.result.snat = decision
                    self.result.masquerade = self.result.masquerade or decision.kind == "MASQUERADE"
        self.tracker.apply_nat(view, manip, pkt)

    def _confirm(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        view = skb.ct
        if (
            view is not None
            and view.state != "UNTRACKED"
            and not self.tracker.confirm(view, pkt, skb, self.env.now_ns)
        ):
            raise _Stop(DROP, hook, "conntrack confirm failed")

    def _incoming(self, pkt: Packet, skb: Skb, looped: bool) -> str:
        self._hook(Hook.PREROUTING, pkt, skb, looped)
        if self.ctx.is_local(pkt.dst):
            self._hook(Hook.INPUT, pkt, skb)
            return "local"
        if not self.node.forwarding:
            raise _Stop(DROP, Hook.PREROUTING, "forwarding disabled")
        self._route(pkt, skb, Hook.PREROUTING)
        self._hook(Hook.FORWARD, pkt, skb)
        self._hook(Hook.POSTROUTING, pkt, skb)
        return "forward"

    def _route(self, pkt: Packet, skb: Skb, hook: Hook) -> None:
        if self.ctx.is_local(pkt.dst):
            skb.out_iface = "lo"
            return
        route = self.node.route(pkt.dst)
        if route is None:
            raise _Stop(DROP, hook, "no route to host")
        skb.out_iface = self.result.out_iface = route.dev

    def _output(self, pkt: Packet, skb: Skb) -> str:
        self._route(pkt, skb, Hook.OUTPUT)
        dst = pkt.dst
        self._hook(Hook.OUTPUT, pkt, skb)
        if pkt.dst != dst:
            self._route(pkt, skb, Hook.OUTPUT)
        self._hook(Hook.POSTROUTING, pkt, skb)
        if skb.out_iface != "lo":
            return "out"
        skb.in_iface = "lo"
        return self._incoming(pkt, skb, True)
