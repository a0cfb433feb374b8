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
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from kplab.netfilter.ctview import CtDrop, CtView, Nat
from kplab.netfilter.engine import CChain, Engine, TraceEntry, walk
from kplab.netfilter.node import NodeNet
from kplab.netfilter.state import EngineState, Env, SetLookup, Skb, Verdict
from kplab.packet import Packet

ACCEPT, DROP, REJECT = int(Verdict.ACCEPT), int(Verdict.DROP), int(Verdict.REJECT)
VERDICT_NAMES = {ACCEPT: "ACCEPT", DROP: "DROP", REJECT: "REJECT", int(Verdict.QUEUE): "QUEUE"}


class Hook(Enum):
    """NF_INET_* hooks, named as the built-in chains."""

    PREROUTING = "PREROUTING"
    INPUT = "INPUT"
    FORWARD = "FORWARD"
    OUTPUT = "OUTPUT"
    POSTROUTING = "POSTROUTING"


class Manip(Enum):
    """NF_NAT_MANIP_SRC / NF_NAT_MANIP_DST."""

    SRC = "SRC"
    DST = "DST"


class Tracker(Protocol):
    def lookup(self, pkt: Packet, skb: Skb, hook: Hook, now_ns: int) -> CtView | None: ...

    def nat_pending(self, view: CtView, manip: Manip) -> bool: ...

    def bind_nat(self, view: CtView, manip: Manip, nat: Nat | None, pkt: Packet, now_ns: int) -> bool: ...

    def apply_nat(self, view: CtView, manip: Manip, pkt: Packet) -> None: ...

    def confirm(self, view: CtView, pkt: Packet, skb: Skb, now_ns: int) -> bool: ...


@dataclass(slots=True)
class NodeVerdict:
    verdict: str  # ACCEPT | DROP | REJECT | QUEUE
    delivery: str  # "local" | "forward" | "out" | "dropped"
    hook: Hook  # where the walk ended
    out_iface: str | None = None
    dnat: Nat | None = None  # bindings made for this packet (addresses filled in)
    snat: Nat | None = None
    masquerade: bool = False
    reject_with: str | None = None
    reason: str = ""
    trace: list[TraceEntry] = field(default_factory=list)


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


def _complete(node: NodeNet, nat: Nat | None, hook: Hook, skb: Skb) -> Nat | None:
    """MASQUERADE takes the output interface's address, REDIRECT the input one's (or loopback)."""
    if nat is None or nat.kind not in ("MASQUERADE", "REDIRECT"):
        return nat
    iface = skb.out_iface if nat.kind == "MASQUERADE" else skb.in_iface
    addr = node.primary(iface if hook is not Hook.OUTPUT else "lo")
    if addr is None:
        raise _Stop(DROP, hook, f"{nat.kind}: no address on interface {iface}")
    return replace(nat, addr_min=addr, addr_max=addr)


class _Stop(Exception):
    def __init__(self, verdict: int, hook: Hook, reason: str = "") -> None:
        self.verdict, self.hook, self.reason = verdict, hook, reason


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
