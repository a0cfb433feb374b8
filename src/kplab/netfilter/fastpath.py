"""The emulator's per-packet walk through a node's hooks: `traversal`'s walk without a trace.

`FastPath` takes the traced walk's (`traversal._Walk`) steps in the same order and decides the
same things (tests/netfilter/test_fastpath.py holds it to that), minus the trace bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable

from kplab.netfilter.chainwalk import walk
from kplab.netfilter.ctview import CtDrop, Nat
from kplab.netfilter.engine import CChain, Engine
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
from kplab.netfilter.node import NodeNet
from kplab.netfilter.state import EngineState, Env, SetLookup, Skb
from kplab.packet import Packet

_PRE, _INPUT, _FORWARD, _OUTPUT, _POST = (
    Hook.PREROUTING,
    Hook.INPUT,
    Hook.FORWARD,
    Hook.OUTPUT,
    Hook.POSTROUTING,
)
_SRC, _DST = Manip.SRC, Manip.DST
_FILTERS = ("mangle", "filter", "security")


def _tables(chains: tuple[CChain, ...], hook: Hook, pkt: Packet, skb: Skb, env: Env) -> None:
    for chain in chains:
        verdict = walk(chain, pkt, skb, env, None)
        if verdict != ACCEPT:
            raise _Stop(verdict, hook)


class FastPath:
    """One node's untraced walk (the emulator's per-packet path): `_Walk`'s decisions in `_Walk`'s
    order, minus what only a trace needs. The chains that can say something else than ACCEPT
    (`Engine.active`) are looked up once, one `Env` serves every packet (its clock set per packet),
    and the outcome stays in attributes instead of a new `NodeVerdict` per packet.

    `run(pkt, skb, now_ns, local_out)` returns the delivery ("local", "forward", "out" or
    "dropped"); after a drop, `verdict` (its name), `hook`, `reason` and `reject_with` say why.
    """

    __slots__ = (
        "_forward",
        "_input",
        "_input_nat",
        "_out_filter",
        "_out_mangle",
        "_out_nat",
        "_out_raw",
        "_post_mangle",
        "_post_nat",
        "_pre_mangle",
        "_pre_nat",
        "_pre_raw",
        "dnat",
        "engine",
        "env",
        "hook",
        "masquerade",
        "node",
        "out_iface",
        "reason",
        "reject_with",
        "snat",
        "tracker",
        "verdict",
    )

    def __init__(
        self,
        engine: Engine,
        node: NodeNet,
        tracker: Tracker,
        state: EngineState,
        sets: SetLookup | None = None,
        chooser: Callable[[int], bool] | None = None,
    ) -> None:
        self.engine, self.node, self.tracker = engine, node, tracker
        self.env = node.env(0, state, sets, chooser)
        active = engine.active
        self._pre_raw, self._pre_mangle = active("PREROUTING", ("raw",)), active("PREROUTING", ("mangle",))
        self._pre_nat = active("PREROUTING", ("nat",))
        self._input, self._input_nat = active("INPUT", _FILTERS), active("INPUT", ("nat",))
        self._forward = active("FORWARD", _FILTERS)
        self._post_mangle, self._post_nat = (
            active("POSTROUTING", ("mangle",)),
            active("POSTROUTING", ("nat",)),
        )
        self._out_raw, self._out_mangle = active("OUTPUT", ("raw",)), active("OUTPUT", ("mangle",))
        self._out_nat, self._out_filter = active("OUTPUT", ("nat",)), active("OUTPUT", ("filter", "security"))
        self.verdict, self.hook, self.reason = "ACCEPT", _PRE, ""
        self.reject_with: str | None = None
        self.out_iface: str | None = None
        self.dnat: Nat | None = None
        self.snat: Nat | None = None
        self.masquerade = False

    def serves(self, engine: Engine, node: NodeNet, tracker: Tracker, state: EngineState) -> bool:
        """Was this path built for these (the caller may swap any of them between packets)?"""
        return (
            self.engine is engine
            and self.node is node
            and self.tracker is tracker
            and self.env.state is state
        )

    def run(self, pkt: Packet, skb: Skb, now_ns: int, local_out: bool) -> str:
        self.node.bind_env(self.env, now_ns)
        self.out_iface = self.dnat = self.snat = None
        self.masquerade = False
        try:
            return self._output(pkt, skb) if local_out else self._incoming(pkt, skb, False)
        except _Stop as stop:
            self.verdict = VERDICT_NAMES.get(stop.verdict, str(stop.verdict))
            self.hook, self.reason = stop.hook, stop.reason
            self.reject_with = skb.reject_with if stop.verdict == REJECT else None
            return "dropped"

    def evaluate(self, pkt: Packet, skb: Skb, now_ns: int, local_out: bool) -> NodeVerdict:
        """`run`, with the outcome as the traced walk reports it (no trace entries)."""
        delivery = self.run(pkt, skb, now_ns, local_out)
        result = NodeVerdict("ACCEPT", delivery, _OUTPUT if local_out else _PRE, self.out_iface)
        result.dnat, result.snat, result.masquerade = self.dnat, self.snat, self.masquerade
        if delivery == "dropped":
            result.verdict, result.hook, result.reason = self.verdict, self.hook, self.reason
            result.reject_with = self.reject_with
        return result

    def _conntrack(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        ct = skb.ct
        if ct is not None and ct.state == "UNTRACKED":
            return
        try:
            skb.ct = self.tracker.lookup(pkt, skb, hook, self.env.now_ns)
        except CtDrop as drop:
            raise _Stop(DROP, hook, f"conntrack: {drop}") from None

    def _nat(self, hook: Hook, manip: Manip, chains: tuple[CChain, ...], pkt: Packet, skb: Skb) -> None:
        """`_Walk.nat`: consult the nat chain for a new binding, then translate the packet."""
        view = skb.ct
        if view is None or view.state == "UNTRACKED":
            return
        tracker = self.tracker
        if tracker.nat_pending(view, manip):
            skb.nat = None
            if chains:
                _tables(chains, hook, pkt, skb, self.env)
            decision = _complete(self.node, skb.nat, hook, skb)
            skb.nat = None
            if not tracker.bind_nat(view, manip, decision, pkt, self.env.now_ns):
                raise _Stop(DROP, hook, "no free NAT tuple")
            if decision is not None:
                if manip is _DST:
                    self.dnat = decision
                else:
                    self.snat = decision
                    self.masquerade = self.masquerade or decision.kind == "MASQUERADE"
        tracker.apply_nat(view, manip, pkt)

    def _confirm(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        view = skb.ct
        if (
            view is not None
            and view.state != "UNTRACKED"
            and not self.tracker.confirm(view, pkt, skb, self.env.now_ns)
        ):
            raise _Stop(DROP, hook, "conntrack confirm failed")

    def _incoming(self, pkt: Packet, skb: Skb, looped: bool) -> str:
        env = self.env
        if self._pre_raw:
            _tables(self._pre_raw, _PRE, pkt, skb, env)
        if not looped:
            self._conntrack(_PRE, pkt, skb)
        if self._pre_mangle:
            _tables(self._pre_mangle, _PRE, pkt, skb, env)
        if skb.ct is not None:  # (`_nat` returns at once without a view)
            self._nat(_PRE, _DST, self._pre_nat, pkt, skb)
        node = self.node
        dst = pkt.dst
        if dst >> 24 == 127 or dst in env.local_addrs:  # `NodeNet.is_local` (`bind_env` set the set)
            if self._input:
                _tables(self._input, _INPUT, pkt, skb, env)
            self._nat(_INPUT, _SRC, self._input_nat, pkt, skb)
            self._confirm(_INPUT, pkt, skb)
            return "local"
        if not node.forwarding:
            raise _Stop(DROP, _PRE, "forwarding disabled")
        route = node.route(dst)  # `_route`, knowing the destination is not local
        if route is None:
            raise _Stop(DROP, _PRE, "no route to host")
        skb.out_iface = self.out_iface = route.dev
        if self._forward:
            _tables(self._forward, _FORWARD, pkt, skb, env)
        self._postrouting(pkt, skb)
        return "forward"

    def _route(self, pkt: Packet, skb: Skb, hook: Hook) -> None:
        dst = pkt.dst
        if dst >> 24 == 127 or dst in self.env.local_addrs:  # `NodeNet.is_local`
            skb.out_iface = "lo"
            return
        route = self.node.route(dst)
        if route is None:
            raise _Stop(DROP, hook, "no route to host")
        skb.out_iface = self.out_iface = route.dev

    def _postrouting(self, pkt: Packet, skb: Skb) -> None:
        if self._post_mangle:
            _tables(self._post_mangle, _POST, pkt, skb, self.env)
        self._nat(_POST, _SRC, self._post_nat, pkt, skb)
        self._confirm(_POST, pkt, skb)

    def _output(self, pkt: Packet, skb: Skb) -> str:
        env = self.env
        self._route(pkt, skb, _OUTPUT)
        if self._out_raw:
            _tables(self._out_raw, _OUTPUT, pkt, skb, env)
        self._conntrack(_OUTPUT, pkt, skb)
        if self._out_mangle:
            _tables(self._out_mangle, _OUTPUT, pkt, skb, env)
        dst = pkt.dst
        self._nat(_OUTPUT, _DST, self._out_nat, pkt, skb)
        if self._out_filter:
            _tables(self._out_filter, _OUTPUT, pkt, skb, env)
        if pkt.dst != dst:
            self._route(pkt, skb, _OUTPUT)
        self._postrouting(pkt, skb)
        if skb.out_iface != "lo":
            return "out"
        skb.in_iface = "lo"
        return self._incoming(pkt, skb, True)
