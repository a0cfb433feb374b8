"""The hook walker: a packet through the netfilter hooks of one node, in the kernel's order. No I/O,
no clock. One walker serves the emulator (untraced, per packet) and `kplab trace` (traced).

Theory of operation
-------------------
A node's rules reach the walker as base chains (`hooks.BaseChain`), each registered at one hook
with a priority: iptables' tables (`tables.base_chains(engine)`: raw -300, mangle -150, nat -100
at PREROUTING/OUTPUT and 100 at INPUT/POSTROUTING, filter 0, security 50) and, alike, nftables
base chains. Per hook they run in ascending priority, interleaved with the kernel's own steps
(include/uapi/linux/netfilter_ipv4.h):

    conntrack lookup  -200       PREROUTING, OUTPUT (`Tracker.lookup`, not for UNTRACKED)
    NAT core          -100       PREROUTING, OUTPUT (DNAT);  100 INPUT, POSTROUTING (SNAT)
    confirm           INT_MAX    INPUT, POSTROUTING (`Tracker.confirm`)

so a hook's chains fall into four runs (`_HookChains`): `early` (before the conntrack lookup),
`middle` (up to the NAT core), `nat` (the nat chains, which the NAT core runs) and `late`. At
equal priorities a kernel step runs first, and of two chains the one registered later runs
first (`nf_hook_entries_grow` inserts a hook before the first of equal or higher priority).

The hooks themselves, in the kernel's order:

    incoming:   PREROUTING, then the routing decision: a local address -> INPUT, else (with
                forwarding on and a route) FORWARD and POSTROUTING out of the route's interface
    local out:  routing, OUTPUT, re-routing if NAT changed the destination (the remaining OUTPUT
                chains still see the original output interface, as `nf_hook_state.out` keeps
                it), then POSTROUTING; a packet to a local address then loops back through
                PREROUTING and INPUT with its conntrack entry attached (no second lookup)

Every base chain's verdict counts: ACCEPT goes on to the next step, anything else (DROP, REJECT,
QUEUE) ends the walk there. The NAT core consults the hook's nat chains only while the
connection has no binding for that manip (`Tracker.nat_pending`: its first packet), in order
until one decides; it completes the decision (MASQUERADE takes an address of the output interface,
REDIRECT the input one's), binds it (or a null binding) and translates every packet of the
connection (`Tracker.apply_nat`). The packet is rewritten in place, as the kernel rewrites the
skb; take `pkt.copy()` first to keep the original.

One walker, trace optional: `HookWalker(chains, node, tracker, state, traced=...)` does the same
steps either way. Traced, it runs every chain (also those that can only say ACCEPT, for their
`policy` lines) and hands each a trace list; untraced, it skips inert chains and passes no list.
The emulator keeps one untraced walker per node and calls `run(pkt, skb, now_ns, local_out)`
per packet; `evaluate_node` builds one per call and returns a `NodeVerdict`.

Plugging in another rule engine (nftables)
------------------------------------------
Give the walker more `BaseChain`s (see its docstring in `hooks`): `evaluate(pkt, skb, env,
trace) -> verdict`, a `priority`, `nat=True` for a `type nat` chain (its decision goes into
`skb.nat`), `inert()`. `evaluate_node(..., chains=[...])` adds them to the iptables engine's;
a node's walker is built from `tables.base_chains(engine)` plus whatever else the node holds.

The conntrack interface (`Tracker`)
-----------------------------------
Conntrack is injected: any object with these five methods (a `typing.Protocol`).

- `lookup(pkt, skb, hook, now_ns) -> CtView | None`: `nf_conntrack_in` at PREROUTING/OUTPUT:
  find or create the entry and say what the packet is to it. `None` = INVALID (no entry).
  It may raise `ctview.CtDrop` when conntrack itself drops the packet (table full).
  Not called when the raw table made the packet UNTRACKED (`skb.ct.state == "UNTRACKED"`).
- `nat_pending(view, manip) -> bool`: `!nf_nat_initialized(ct, manip)`: must the nat chains be
  consulted for this manip (SRC or DST)? True only for a NEW, not yet bound entry.
- `bind_nat(view, manip, nat, pkt, now_ns) -> bool`: `nf_nat_setup_info`: bind the rule's
  decision (`ctview.Nat`, with MASQUERADE/REDIRECT addresses already filled in by the walker)
  or, with `nat=None`, a null binding. False drops the packet (no free tuple).
- `apply_nat(view, manip, pkt) -> None`: `nf_nat_packet`: rewrite the packet per the entry's
  bindings and the packet's direction (also for ESTABLISHED and REPLY packets).
- `confirm(view, pkt, skb, now_ns) -> bool`: `__nf_conntrack_confirm` at the last hook; False
  drops (an insert clash).

`kplab.netfilter.standin.StandInTracker` is the minimal implementation (the state is whatever
the caller sets); `kplab.netfilter.linux_tracker.LinuxTracker` puts the real one behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Final, NamedTuple

from kplab.netfilter.ctview import CtDrop, Nat
from kplab.netfilter.engine import Engine, TraceEntry
from kplab.netfilter.hooks import (
    ACCEPT,
    DROP,
    PRI_CONNTRACK,
    PRI_NAT_DST,
    PRI_NAT_SRC,
    BaseChain,
    Hook,
    Manip,
    NodeVerdict,
    Tracker,
    verdict_name,
)
from kplab.netfilter.node import NodeNet
from kplab.netfilter.state import EngineState, SetLookup, Skb
from kplab.netfilter.tables import base_chains
from kplab.packet import Packet

__all__ = ["Hook", "HookWalker", "Manip", "NodeVerdict", "Tracker", "evaluate_node"]

_PRE: Final = Hook.PREROUTING
_INPUT: Final = Hook.INPUT
_FORWARD: Final = Hook.FORWARD
_OUTPUT: Final = Hook.OUTPUT
_POST: Final = Hook.POSTROUTING
_SRC: Final = Manip.SRC
_DST: Final = Manip.DST
DROPPED: Final = "dropped"
_NONE: tuple[BaseChain, ...] = ()

# The kernel's own steps per hook: (priority of the conntrack lookup or None, of the NAT core or None).
_KERNEL_STEPS: Final[dict[Hook, tuple[int | None, int | None]]] = {
    _PRE: (PRI_CONNTRACK, PRI_NAT_DST),
    _INPUT: (None, PRI_NAT_SRC),
    _FORWARD: (None, None),
    _OUTPUT: (PRI_CONNTRACK, PRI_NAT_DST),
    _POST: (None, PRI_NAT_SRC),
}


class _HookChains(NamedTuple):
    """One hook's base chains, in the runs the kernel's own steps cut them into."""

    early: tuple[BaseChain, ...]  # before the conntrack lookup
    middle: tuple[BaseChain, ...]  # after it, before the NAT core
    nat: tuple[BaseChain, ...]  # the nat chains, which the NAT core consults
    late: tuple[BaseChain, ...]  # after the NAT core (before confirm)


def hook_chains(hook: Hook, chains: Iterable[BaseChain], traced: bool) -> _HookChains:
    """`hook`'s chains in the order they run (see the module docstring); inert ones left out
    unless `traced`. Raises ValueError for a nat chain at a hook without NAT (FORWARD)."""
    mine = [c for c in chains if c.hook is hook and (traced or not c.inert())]
    # Ascending priority; of equal ones, the one registered later first.
    order = sorted(range(len(mine)), key=lambda i: (mine[i].priority, -i))
    ordered = [mine[i] for i in order]
    ct_pri, nat_pri = _KERNEL_STEPS[hook]
    early, middle, nat, late = [], [], [], []
    for chain in ordered:
        if chain.nat:
            if nat_pri is None:
                raise ValueError(f"{chain!r}: a nat chain at {hook.value}, which has no NAT")
            nat.append(chain)
        elif ct_pri is not None and chain.priority < ct_pri:
            early.append(chain)
        elif nat_pri is None or chain.priority < nat_pri:
            middle.append(chain)
        else:
            late.append(chain)
    return _HookChains(tuple(early), tuple(middle), tuple(nat), tuple(late))


def _take_nat(skb: Skb) -> Nat | None:
    """The NAT decision a nat chain left in `skb.nat`, cleared. (A function, so that no caller
    reads `skb.nat` right after setting it: mypy would keep it narrowed to the value set.)"""
    nat = skb.nat
    skb.nat = None
    return nat


class HookWalker:
    """One node's walk through its hooks, trace optional (see the module docstring).

    `run(pkt, skb, now_ns, local_out)` returns the delivery ("local", "forward", "out" or
    "dropped"); after a drop, `verdict` (its name), `hook`, `reason` and `reject_with` say why;
    `out_iface`, `dnat`, `snat` and `masquerade` say what happened; traced, `trace` holds the
    packet's trace. One `Env` serves every packet (its clock set per packet).
    """

    __slots__ = (
        "_fwd",
        "_in_late",
        "_in_middle",
        "_in_nat",
        "_out_early",
        "_out_late",
        "_out_middle",
        "_out_nat",
        "_post_late",
        "_post_middle",
        "_post_nat",
        "_pre_early",
        "_pre_late",
        "_pre_middle",
        "_pre_nat",
        "_v6",
        "dnat",
        "env",
        "hook",
        "masquerade",
        "node",
        "out_iface",
        "reason",
        "reject_with",
        "snat",
        "trace",
        "traced",
        "tracker",
        "verdict",
    )

    def __init__(
        self,
        chains: Sequence[BaseChain],
        node: NodeNet,
        tracker: Tracker,
        state: EngineState,
        sets: SetLookup | None = None,
        chooser: Callable[[int], bool] | None = None,
        *,
        traced: bool = False,
        family: int = 4,
    ) -> None:
        self.node, self.tracker, self.traced = node, tracker, traced
        self._v6 = family == 6  # the loopback address is ::1, not 127.0.0.0/8
        self.env = node.env(0, state, sets, chooser)
        pre, inp, fwd, out, post = [hook_chains(hook, chains, traced) for hook in Hook]
        self._pre_early, self._pre_middle, self._pre_nat, self._pre_late = pre
        self._in_middle, self._in_nat, self._in_late = inp.middle, inp.nat, inp.late
        self._fwd = fwd.middle
        self._out_early, self._out_middle, self._out_nat, self._out_late = out
        self._post_middle, self._post_nat, self._post_late = post.middle, post.nat, post.late
        self.verdict, self.hook, self.reason = "ACCEPT", _PRE, ""
        self.reject_with: str | None = None
        self.out_iface: str | None = None
        self.dnat: Nat | None = None
        self.snat: Nat | None = None
        self.masquerade = False
        self.trace: list[TraceEntry] | None = [] if traced else None

    def serves(self, node: NodeNet, tracker: Tracker, state: EngineState) -> bool:
        """Was this walker built for these (the caller may swap any of them between packets)?"""
        return self.node is node and self.tracker is tracker and self.env.state is state

    def run(self, pkt: Packet, skb: Skb, now_ns: int, local_out: bool) -> str:
        self.node.bind_env(self.env, now_ns)
        self.out_iface = self.dnat = self.snat = None
        self.masquerade = False
        if self.traced:
            self.trace = []
        delivery = self._output(pkt, skb) if local_out else self._incoming(pkt, skb, False)
        if delivery == DROPPED:
            self.reject_with = skb.reject_with if self.verdict == "REJECT" else None
        return delivery

    def evaluate(self, pkt: Packet, skb: Skb, now_ns: int, local_out: bool = False) -> NodeVerdict:
        """`run`, with the outcome as a `NodeVerdict` (and the trace, when traced)."""
        delivery = self.run(pkt, skb, now_ns, local_out)
        result = NodeVerdict("ACCEPT", delivery, _OUTPUT if local_out else _PRE, self.out_iface)
        result.dnat, result.snat, result.masquerade = self.dnat, self.snat, self.masquerade
        if delivery == DROPPED:
            result.verdict, result.hook, result.reason = self.verdict, self.hook, self.reason
            result.reject_with = self.reject_with
        if self.trace is not None:
            result.trace = self.trace
        return result

    # -- the steps: each returns False when the packet stops there ---------------------------
    def _stop(self, verdict: int, hook: Hook, reason: str) -> bool:
        self.verdict, self.hook, self.reason = verdict_name(verdict), hook, reason
        return False

    def _chains(self, chains: tuple[BaseChain, ...], hook: Hook, pkt: Packet, skb: Skb) -> bool:
        env, trace = self.env, self.trace
        for chain in chains:
            verdict = chain.evaluate(pkt, skb, env, trace)
            if verdict != ACCEPT:
                return self._stop(verdict, hook, "")
        return True

    def _conntrack(self, hook: Hook, pkt: Packet, skb: Skb) -> bool:
        ct = skb.ct
        if ct is not None and ct.state == "UNTRACKED":
            return True
        try:
            skb.ct = self.tracker.lookup(pkt, skb, hook, self.env.now_ns)
        except CtDrop as drop:
            return self._stop(DROP, hook, f"conntrack: {drop}")
        return True

    def _nat(self, hook: Hook, manip: Manip, chains: tuple[BaseChain, ...], pkt: Packet, skb: Skb) -> bool:
        """The NAT core (`nf_nat_inet_fn`): a new binding from the nat chains, then the rewrite."""
        view = skb.ct
        if view is None or view.state == "UNTRACKED":
            return True
        tracker = self.tracker
        if tracker.nat_pending(view, manip):
            _take_nat(skb)  # only the nat chains decide
            decision: Nat | None = None
            for chain in chains:
                verdict = chain.evaluate(pkt, skb, self.env, self.trace)
                decision = _take_nat(skb)
                if verdict != ACCEPT:
                    return self._stop(verdict, hook, "")
                if decision is not None:
                    break
            if decision is not None and (decision.kind == "MASQUERADE" or decision.kind == "REDIRECT"):
                decision = self._complete(decision, hook, pkt, skb)
                if decision is None:
                    return False
            if not tracker.bind_nat(view, manip, decision, pkt, self.env.now_ns):
                return self._stop(DROP, hook, "no free NAT tuple")
            if decision is not None:
                if manip is _DST:
                    self.dnat = decision
                else:
                    self.snat = decision
                    self.masquerade = self.masquerade or decision.kind == "MASQUERADE"
        tracker.apply_nat(view, manip, pkt)
        return True

    def _complete(self, nat: Nat, hook: Hook, pkt: Packet, skb: Skb) -> Nat | None:
        """MASQUERADE takes the address `NodeNet.masquerade_source` selects for the route's next hop
        (`rt_nexthop`: its gateway, else the destination), REDIRECT the input interface's (or
        loopback)."""
        if nat.kind == "MASQUERADE":
            iface = skb.out_iface
            route = self.node.route(pkt.dst)
            nexthop = route.via if route is not None and route.via is not None else pkt.dst
            addr = self.node.masquerade_source(iface, nexthop)
            if addr is None:
                self._stop(DROP, hook, f"MASQUERADE: no address on {iface} nor on any other interface")
                return None
        else:
            iface = skb.in_iface
            addr = self.node.primary(iface if hook is not _OUTPUT else "lo")
            if addr is None:
                self._stop(DROP, hook, f"REDIRECT: no address on interface {iface}")
                return None
        return replace(nat, addr_min=addr, addr_max=addr)

    def _confirm(self, hook: Hook, pkt: Packet, skb: Skb) -> bool:
        view = skb.ct
        if (
            view is not None
            and view.state != "UNTRACKED"
            and not self.tracker.confirm(view, pkt, skb, self.env.now_ns)
        ):
            return self._stop(DROP, hook, "conntrack confirm failed")
        return True

    def _route(self, pkt: Packet, skb: Skb, hook: Hook) -> bool:
        dst = pkt.dst
        if dst in self.env.local_addrs or (dst == 1 if self._v6 else dst >> 24 == 127):  # RTN_LOCAL
            skb.out_iface = "lo"
            return True
        route = self.node.route(dst)
        if route is None:
            return self._stop(DROP, hook, "no route to host")
        if route.kind != "unicast":
            return self._stop(DROP, hook, f"{route.kind} route")
        skb.out_iface = self.out_iface = route.dev
        return True

    # -- the hooks, in the kernel's order ----------------------------------------------------
    def _incoming(self, pkt: Packet, skb: Skb, looped: bool) -> str:
        if self._pre_early and not self._chains(self._pre_early, _PRE, pkt, skb):
            return DROPPED
        if not looped and not self._conntrack(_PRE, pkt, skb):
            return DROPPED
        if self._pre_middle and not self._chains(self._pre_middle, _PRE, pkt, skb):
            return DROPPED
        if skb.ct is not None and not self._nat(_PRE, _DST, self._pre_nat, pkt, skb):
            return DROPPED  # (`_nat` does nothing without a view)
        if self._pre_late and not self._chains(self._pre_late, _PRE, pkt, skb):
            return DROPPED
        node = self.node
        dst = pkt.dst
        if dst in self.env.local_addrs or (dst == 1 if self._v6 else dst >> 24 == 127):  # RTN_LOCAL
            if self._in_middle and not self._chains(self._in_middle, _INPUT, pkt, skb):
                return DROPPED
            if not self._nat(_INPUT, _SRC, self._in_nat, pkt, skb):
                return DROPPED
            if self._in_late and not self._chains(self._in_late, _INPUT, pkt, skb):
                return DROPPED
            return "local" if self._confirm(_INPUT, pkt, skb) else DROPPED
        if not node.forwarding:
            self._stop(DROP, _PRE, "forwarding disabled")
            return DROPPED
        route = node.route(dst)  # `_route`, knowing the destination is not local
        if route is None:
            self._stop(DROP, _PRE, "no route to host")
            return DROPPED
        if route.kind != "unicast":
            self._stop(DROP, _PRE, f"{route.kind} route")
            return DROPPED
        skb.out_iface = self.out_iface = route.dev
        if self._fwd and not self._chains(self._fwd, _FORWARD, pkt, skb):
            return DROPPED
        return "forward" if self._postrouting(pkt, skb) else DROPPED

    def _postrouting(self, pkt: Packet, skb: Skb) -> bool:
        if self._post_middle and not self._chains(self._post_middle, _POST, pkt, skb):
            return False
        if not self._nat(_POST, _SRC, self._post_nat, pkt, skb):
            return False
        if self._post_late and not self._chains(self._post_late, _POST, pkt, skb):
            return False
        return self._confirm(_POST, pkt, skb)

    def _output(self, pkt: Packet, skb: Skb) -> str:
        if not self._route(pkt, skb, _OUTPUT):
            return DROPPED
        if self._out_early and not self._chains(self._out_early, _OUTPUT, pkt, skb):
            return DROPPED
        if not self._conntrack(_OUTPUT, pkt, skb):
            return DROPPED
        if self._out_middle and not self._chains(self._out_middle, _OUTPUT, pkt, skb):
            return DROPPED
        dst = pkt.dst
        if not self._nat(_OUTPUT, _DST, self._out_nat, pkt, skb):
            return DROPPED
        if self._out_late and not self._chains(self._out_late, _OUTPUT, pkt, skb):
            return DROPPED
        if pkt.dst != dst and not self._route(pkt, skb, _OUTPUT):
            return DROPPED
        if not self._postrouting(pkt, skb):
            return DROPPED
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
    chains: Sequence[BaseChain] = (),
) -> NodeVerdict:
    """Walk the node's hooks for one packet (see the module docstring): the iptables `engine`'s
    tables and any other base `chains`. `local_out` = the node itself sends it; otherwise it
    arrives on `skb.in_iface`."""
    walker = HookWalker([*base_chains(engine), *chains], node, tracker, state, sets, chooser, traced=trace)
    return walker.evaluate(pkt, skb, now_ns, local_out)
