"""A packet through the netfilter hooks of one node, in the kernel's order. No I/O, no clock.

Theory of operation
-------------------
`evaluate_hook(engine, table, hook, pkt, skb, env, trace)` runs one table's built-in chain for one
hook and returns the verdict (the NAT decision, if any, is left in `skb.nat`).

`evaluate_node(engine, node, pkt, skb, state, now_ns, tracker, ...)` walks a node's hooks, with
these priorities (include/uapi/linux/netfilter_ipv4.h):

    incoming:   PREROUTING  raw, [conntrack lookup], mangle, nat (DNAT; chain only for NEW)
                routing decision: local address -> INPUT, else FORWARD (longest-prefix route)
                INPUT       mangle, filter, security, nat (SNAT; chain only for NEW), [confirm]
                FORWARD     mangle, filter, security, then POSTROUTING
    local out:  routing, OUTPUT raw, [conntrack lookup], mangle, nat (DNAT), filter, security,
                re-routing if the destination changed, then POSTROUTING; a packet to a local
                address then loops back through PREROUTING (raw, mangle, nat) and INPUT with its
                conntrack entry attached (no second lookup)
    POSTROUTING mangle, nat (SNAT/MASQUERADE; chain only for NEW), [confirm]

It returns a `NodeVerdict`: the verdict (ACCEPT/DROP/REJECT), where the packet went, the NAT
bindings made, and the trace. Untraced (`trace=False`), the walk is `FastPath`'s: the same steps in
the same order without trace bookkeeping; the emulator keeps one `FastPath` per node and calls
`FastPath.run(pkt, skb, now_ns, local_out)` per packet. The packet is rewritten in place by NAT,
as the kernel rewrites the skb; take `pkt.copy()` first to keep the original.

The conntrack interface (`Tracker`)
-----------------------------------
Conntrack is injected: any object with these five methods (a `typing.Protocol`).

- `lookup(pkt, skb, hook, now_ns) -> CtView | None`: `nf_conntrack_in` at PREROUTING/OUTPUT:
  find or create the entry and say what the packet is to it. `None` = INVALID (no entry).
  It may raise `ctview.CtDrop` when conntrack itself drops the packet (table full).
  Not called when the raw table made the packet UNTRACKED (`skb.ct.state == "UNTRACKED"`).
- `nat_pending(view, manip) -> bool`: `!nf_nat_initialized(ct, manip)`: must the nat table's
  chain be consulted for this manip (SRC or DST)? True only for a NEW, not yet bound entry.
- `bind_nat(view, manip, nat, pkt, now_ns) -> bool`: `nf_nat_setup_info`: bind the rule's
  decision (`ctview.Nat`, with MASQUERADE/REDIRECT addresses already filled in by the traversal)
  or, with `nat=None`, a null binding. False drops the packet (no free tuple).
- `apply_nat(view, manip, pkt) -> None`: `nf_nat_packet`: rewrite the packet per the entry's
  bindings and the packet's direction (also for ESTABLISHED and REPLY packets).
- `confirm(view, pkt, skb, now_ns) -> bool`: `__nf_conntrack_confirm` at the last hook; False
  drops (an insert clash).

`kplab.netfilter.standin.StandInTracker` is the minimal implementation (the state is whatever
the caller sets); `kplab.netfilter.conntrack` provides the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kplab.netfilter.chainwalk import walk
from kplab.netfilter.ctview import CtDrop
from kplab.netfilter.engine import Engine, TraceEntry
from kplab.netfilter.fastpath import FastPath
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

__all__ = ["FastPath", "Hook", "Manip", "NodeVerdict", "Tracker", "evaluate_hook", "evaluate_node"]


def evaluate_hook(
    engine: Engine,
    table: str,
    hook: Hook,
    pkt: Packet,
    skb: Skb,
    env: Env,
    trace: list[TraceEntry] | None = None,
) -> int:
    """The verdict of table `table` at `hook` (ACCEPT when the table or chain does not exist)."""
    chain = engine.chain(table, hook.value)
    if chain is None:
        return ACCEPT
    return walk(chain, pkt, skb, env, trace)


@dataclass(slots=True)
class _Walk:
    engine: Engine
    node: NodeNet
    tracker: Tracker
    env: Env
    result: NodeVerdict
    trace: list[TraceEntry]

    def tables(self, hook: Hook, names: tuple[str, ...], pkt: Packet, skb: Skb) -> None:
        for name in names:
            verdict = evaluate_hook(self.engine, name, hook, pkt, skb, self.env, self.trace)
            if verdict != ACCEPT:
                raise _Stop(verdict, hook)

    def conntrack(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        if skb.ct is not None and skb.ct.state == "UNTRACKED":
            return
        try:
            skb.ct = self.tracker.lookup(pkt, skb, hook, self.env.now_ns)
        except CtDrop as drop:
            raise _Stop(DROP, hook, f"conntrack: {drop}") from None

    def nat(self, hook: Hook, manip: Manip, pkt: Packet, skb: Skb) -> None:
        """`nf_nat_inet_fn`: consult the nat chain for a new binding, then translate the packet."""
        view = skb.ct
        if view is None or view.state == "UNTRACKED":
            return
        if self.tracker.nat_pending(view, manip):
            skb.nat = None
            self.tables(hook, ("nat",), pkt, skb)
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

    def confirm(self, hook: Hook, pkt: Packet, skb: Skb) -> None:
        view = skb.ct
        if (
            view is not None
            and view.state != "UNTRACKED"
            and not self.tracker.confirm(view, pkt, skb, self.env.now_ns)
        ):
            raise _Stop(DROP, hook, "conntrack confirm failed")

    def incoming(self, pkt: Packet, skb: Skb, looped: bool = False) -> str:
        pre = Hook.PREROUTING
        self.tables(pre, ("raw",), pkt, skb)
        if not looped:
            self.conntrack(pre, pkt, skb)
        self.tables(pre, ("mangle",), pkt, skb)
        self.nat(pre, Manip.DST, pkt, skb)
        if self.node.is_local(pkt.dst):
            self.tables(Hook.INPUT, ("mangle", "filter", "security"), pkt, skb)
            self.nat(Hook.INPUT, Manip.SRC, pkt, skb)
            self.confirm(Hook.INPUT, pkt, skb)
            return "local"
        if not self.node.forwarding:
            raise _Stop(DROP, pre, "forwarding disabled")
        self.route(pkt, skb, pre)
        self.tables(Hook.FORWARD, ("mangle", "filter", "security"), pkt, skb)
        self.postrouting(pkt, skb)
        return "forward"

    def route(self, pkt: Packet, skb: Skb, hook: Hook) -> None:
        if self.node.is_local(pkt.dst):
            skb.out_iface = "lo"
            return
        route = self.node.route(pkt.dst)
        if route is None:
            raise _Stop(DROP, hook, "no route to host")
        if route.kind != "unicast":
            raise _Stop(DROP, hook, f"{route.kind} route")
        skb.out_iface = route.dev
        self.result.out_iface = route.dev

    def postrouting(self, pkt: Packet, skb: Skb) -> None:
        self.tables(Hook.POSTROUTING, ("mangle",), pkt, skb)
        self.nat(Hook.POSTROUTING, Manip.SRC, pkt, skb)
        self.confirm(Hook.POSTROUTING, pkt, skb)

    def output(self, pkt: Packet, skb: Skb) -> str:
        out = Hook.OUTPUT
        self.route(pkt, skb, out)
        self.tables(out, ("raw",), pkt, skb)
        self.conntrack(out, pkt, skb)
        self.tables(out, ("mangle",), pkt, skb)
        dst = pkt.dst
        self.nat(out, Manip.DST, pkt, skb)
        self.tables(out, ("filter", "security"), pkt, skb)
        if pkt.dst != dst:
            self.route(pkt, skb, out)
        self.postrouting(pkt, skb)
        if skb.out_iface != "lo":
            return "out"
        skb.in_iface = "lo"
        return self.incoming(pkt, skb, looped=True)


def evaluate_node(
    engine: Engine,
    node: NodeNet,
    pkt: Packet,
    skb: Skb,
    state: EngineState,
    now_ns: int,
    tracker: Tracker,
    *,
    local_out: bool = False,
    sets: SetLookup | None = None,
    chooser: Callable[[int], bool] | None = None,
    trace: bool = True,
) -> NodeVerdict:
    """Walk the node's hooks for one packet (see the module docstring). `local_out` = the node
    itself sends it; otherwise it arrives on `skb.in_iface`. Untraced, it is `FastPath`'s walk."""
    if not trace:
        return FastPath(engine, node, tracker, state, sets, chooser).evaluate(pkt, skb, now_ns, local_out)
    env = node.env(now_ns, state, sets, chooser)
    result = NodeVerdict("ACCEPT", "", Hook.OUTPUT if local_out else Hook.PREROUTING)
    run = _Walk(engine, node, tracker, env, result, result.trace)
    try:
        result.delivery = run.output(pkt, skb) if local_out else run.incoming(pkt, skb)
    except _Stop as stop:
        result.verdict = VERDICT_NAMES.get(stop.verdict, str(stop.verdict))
        result.delivery, result.hook, result.reason = "dropped", stop.hook, stop.reason
        result.reject_with = skb.reject_with if stop.verdict == REJECT else None
    return result
