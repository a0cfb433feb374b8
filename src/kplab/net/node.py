"""A Kubernetes node: interfaces, routes, a ruleset, a conntrack table, and the kernel's packet path.

The path mirrors the kernel's netfilter hooks (net/ipv4/ip_input.c, ip_forward.c, ip_output.c):

    receive:  PREROUTING [raw, conntrack lookup, mangle, nat if NEW] -> routing decision
              -> local:   INPUT [mangle, filter, nat if NEW] -> confirm -> the node's own sockets
              -> forward: FORWARD [mangle, filter] -> POSTROUTING [mangle, nat if NEW] -> confirm -> out
    output:   OUTPUT [raw, conntrack lookup, mangle, nat if NEW, filter] -> POSTROUTING -> out

Conntrack is `kplab.netfilter.conntrack` (one table per node netns); the rules are evaluated by
a `RuleRunner` (the netfilter engine). A packet conntrack judges INVALID has no entry: no NAT is
applied to it, and it continues unless a rule drops it. Every packet that enters a node leaves
it, is delivered locally, or is dropped with a reason counted in `drops`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kplab.netfilter.conntrack import Conntrack, CtResult
from kplab.netfilter.conntrack.entry import IPS_DST_NAT
from kplab.netfilter.state import Skb, Verdict
from kplab.packet import TCP, Packet
from kplab.sim.scheduler import Scheduler

ACCEPT = int(Verdict.ACCEPT)
Transmit = Callable[[Packet], None]


class RuleRunner(Protocol):
    """Evaluates one table's hook chain for a packet (the netfilter engine, bound to one node)."""

    def run(self, table: str, hook: str, pkt: Packet, skb: Skb, now_ns: int) -> int: ...

    def has_rules(self, table: str, hook: str) -> bool: ...


@dataclass(slots=True)
class Route:
    network: int
    mask: int
    iface: str


@dataclass(slots=True)
class NodeStats:
    """What a node saw: drops by reason, INVALID packets by conntrack reason, escapes."""

    forwarded: int = 0
    delivered_local: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    ignored_by_reason: dict[str, int] = field(default_factory=dict)
    unnated_escapes: int = 0

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1


# Observers see every packet a node decided on: (node, pkt, in_iface, out_iface, ct result, note).
Observer = Callable[["Node", Packet, str | None, str | None, CtResult | None, str], None]


class Node:
    """One node's network namespace (see the module docstring for the packet path)."""

    def __init__(self, name: str, sched: Scheduler, rules: RuleRunner, ct: Conntrack) -> None:
        self.name = name
        self.sched = sched
        self.rules = rules
        self.ct = ct
        self.addrs: dict[str, int] = {}  # interface -> its address
        self.local: set[int] = set()
        self.routes: list[Route] = []
        self.out: dict[str, Transmit] = {}
        self.pod_ifaces: set[str] = set()
        self.local_input: Callable[[Packet], None] | None = None
        self.stats = NodeStats()
        self.observers: list[Observer] = []
        # Reply tuples (src, sport, dst, dport) of connections this node DNATed: a packet leaving
        # with one of these un-translated has escaped the reverse NAT.
        self._dnat_replies: set[tuple[int, int, int, int]] = set()

    # -- wiring -----------------------------------------------------------------------------
    def add_interface(self, iface: str, addr: int | None, transmit: Transmit, *, pod: bool = False) -> None:
        self.out[iface] = transmit
        if addr is not None:
            self.addrs[iface] = addr
            self.local.add(addr)
        if pod:
            self.pod_ifaces.add(iface)

    def add_route(self, network: int, mask: int, iface: str) -> None:
        self.routes.append(Route(network & mask, mask, iface))
        self.routes.sort(key=lambda r: -bin(r.mask).count("1"))

    def receiver(self, iface: str) -> Callable[[Packet], None]:
        """The callable a link calls to hand this node a packet arriving on `iface`."""

        def deliver(pkt: Packet) -> None:
            self.receive(pkt, iface)

        return deliver

    def route(self, dst: int) -> str | None:
        for r in self.routes:
            if dst & r.mask == r.network:
                return r.iface
        return None

    # -- the packet path --------------------------------------------------------------------
    def receive(self, pkt: Packet, in_iface: str) -> None:
        now = self.sched.now_ns
        skb = Skb(in_iface=in_iface)
        if not self._hook("raw", "PREROUTING", pkt, skb, now):
            return
        res = self._track(pkt, "PREROUTING", skb, now)
        if res is None or not self._hook("mangle", "PREROUTING", pkt, skb, now):
            return
        if not self._nat(res, "PREROUTING", pkt, skb, now, None):
            return
        if pkt.dst in self.local:
            self._input(pkt, skb, res, now)
            return
        out_iface = self.route(pkt.dst)
        if out_iface is None:
            self._drop(pkt, "no route to host", in_iface, None, res)
            return
        skb.out_iface = out_iface
        if not (
            self._hook("mangle", "FORWARD", pkt, skb, now) and self._hook("filter", "FORWARD", pkt, skb, now)
        ):
            return
        self._postrouting(pkt, skb, res, now, in_iface, out_iface)

    def output(self, pkt: Packet) -> None:
        """A packet the node itself sends (its own sockets)."""
        now = self.sched.now_ns
        out_iface = self.route(pkt.dst)
        skb = Skb(out_iface=out_iface)
        if not self._hook("raw", "OUTPUT", pkt, skb, now):
            return
        res = self._track(pkt, "OUTPUT", skb, now)
        if res is None or not self._hook("mangle", "OUTPUT", pkt, skb, now):
            return
        if not self._nat(res, "OUTPUT", pkt, skb, now, None):
            return
        out_iface = self.route(pkt.dst)
        if out_iface is None:
            self._drop(pkt, "no route to host", None, None, res)
            return
        skb.out_iface = out_iface
        if not self._hook("filter", "OUTPUT", pkt, skb, now):
            return
        self._postrouting(pkt, skb, res, now, None, out_iface)

    def _input(self, pkt: Packet, skb: Skb, res: CtResult, now: int) -> None:
        if not (
            self._hook("mangle", "INPUT", pkt, skb, now) and self._hook("filter", "INPUT", pkt, skb, now)
        ):
            return
        if not self._nat(res, "INPUT", pkt, skb, now, None):
            return
        if not self.ct.confirm(res, now):
            self._drop(pkt, "conntrack: insert clash", skb.in_iface, None, res)
            return
        self.stats.delivered_local += 1
        self._observe(pkt, skb.in_iface, None, res, "delivered to the node")
        if self.local_input is None:
            self.stats.drop("no local stack")
            return
        self.local_input(pkt)

    def _postrouting(
        self, pkt: Packet, skb: Skb, res: CtResult, now: int, in_iface: str | None, out_iface: str
    ) -> None:
        if not self._hook("mangle", "POSTROUTING", pkt, skb, now):
            return
        if not self._nat(res, "POSTROUTING", pkt, skb, now, self.addrs.get(out_iface)):
            return
        if not self.ct.confirm(res, now):
            self._drop(pkt, "conntrack: insert clash", in_iface, out_iface, res)
            return
        if res.entry is not None and res.entry.status & IPS_DST_NAT and res.direction == 0:
            e = res.entry.reply
            self._dnat_replies.add((e.src, e.sport, e.dst, e.dport))
        note = ""
        if pkt.proto == TCP and (pkt.src, pkt.sport, pkt.dst, pkt.dport) in self._dnat_replies:
            self.stats.unnated_escapes += 1
            note = "left un-NATed: backend address reaches the client"
        self.stats.forwarded += 1
        self._observe(pkt, in_iface, out_iface, res, note)
        self.out[out_iface](pkt)

    # -- helpers ----------------------------------------------------------------------------
    def _track(self, pkt: Packet, hook: str, skb: Skb, now: int) -> CtResult | None:
        untracked = skb.ct is not None and skb.ct.state == "UNTRACKED"
        res = self.ct.lookup(pkt, hook, now, notrack=untracked)
        if res.verdict == "DROP":
            self._drop(pkt, f"conntrack: {res.reason or 'table full'}", skb.in_iface, None, res)
            return None
        kind = res.kind
        if kind == "INVALID" and res.reason:
            d = self.stats.invalid_by_reason
            d[res.reason] = d.get(res.reason, 0) + 1
        elif kind == "IGNORE" and res.reason:
            d = self.stats.ignored_by_reason
            d[res.reason] = d.get(res.reason, 0) + 1
        skb.ct = res.view(now)
        return res

    def _nat(self, res: CtResult, hook: str, pkt: Packet, skb: Skb, now: int, out_addr: int | None) -> bool:
        ct = self.ct
        if ct.nat_pending(res, hook):
            skb.nat = None
            if self.rules.has_rules("nat", hook):
                verdict = self.rules.run("nat", hook, pkt, skb, now)
                if verdict != ACCEPT:
                    self._drop(
                        pkt, f"rule verdict {Verdict(verdict).name} in nat {hook}", skb.in_iface, None, res
                    )
                    return False
            ct.bind_nat(res, skb.nat, hook, out_addr)
            skb.ct = res.view(now)
        ct.apply_nat(pkt, res, hook)
        return True

    def _hook(self, table: str, hook: str, pkt: Packet, skb: Skb, now: int) -> bool:
        rules = self.rules
        if not rules.has_rules(table, hook):
            return True
        verdict = rules.run(table, hook, pkt, skb, now)
        if verdict == ACCEPT:
            return True
        self._drop(pkt, f"{table} {hook}: {Verdict(verdict).name}", skb.in_iface, skb.out_iface, None)
        return False

    def _drop(
        self, pkt: Packet, reason: str, in_iface: str | None, out_iface: str | None, res: CtResult | None
    ) -> None:
        self.stats.drop(reason)
        self._observe(pkt, in_iface, out_iface, res, f"dropped: {reason}")

    def _observe(
        self, pkt: Packet, in_iface: str | None, out_iface: str | None, res: CtResult | None, note: str
    ) -> None:
        for observer in self.observers:
            observer(self, pkt, in_iface, out_iface, res, note)
