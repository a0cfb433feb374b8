"""A Kubernetes node in the emulator: interfaces, routes, its rules, its conntrack table.

The packet path is the hook walker's (`kplab.netfilter.traversal.HookWalker`, untraced: the
kernel's hooks in order, through the base chains of the node's rules) with the real tracker
(`kplab.netfilter.conntrack`, through `LinuxTracker`). This module
only wires it to links: a packet arriving on an interface is evaluated, then forwarded out of the
interface the routing decision chose, delivered to the node's own stack, or dropped with a
reason counted in `stats.drops`. Nothing is scripted: whatever conntrack and the rules decide is
what happens to the packet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from kplab.netfilter.conntrack import Conntrack, CtResult
from kplab.netfilter.conntrack.entry import IPS_DST_NAT
from kplab.netfilter.engine import Engine
from kplab.netfilter.hooks import BaseChain
from kplab.netfilter.linux_tracker import LinuxTracker
from kplab.netfilter.nft.compile import NftEngine
from kplab.netfilter.nft.walk import nft_base_chains
from kplab.netfilter.node import NodeNet, Route
from kplab.netfilter.state import EngineState, Skb
from kplab.netfilter.tables import base_chains
from kplab.netfilter.traversal import HookWalker
from kplab.packet import ICMP, TCP, Packet, TcpFlags, fmt_ipport
from kplab.sim.scheduler import Scheduler

Transmit = Callable[[Packet], None]

# The ICMP codes of REJECT's `--reject-with` (destination unreachable, type 3).
REJECT_CODES: Final = {
    "icmp-net-unreachable": 0,
    "icmp-host-unreachable": 1,
    "icmp-proto-unreachable": 2,
    "icmp-port-unreachable": 3,
    "icmp-net-prohibited": 9,
    "icmp-host-prohibited": 10,
    "icmp-admin-prohibited": 13,
}
ICMP_ERRORS: Final = frozenset({3, 4, 5, 11, 12})


def rst_for(pkt: Packet) -> Packet:
    """The RST `--reject-with tcp-reset` sends back: from the packet's destination, RFC 9293 style."""
    if pkt.flags & TcpFlags.ACK:
        return Packet(pkt.dst, pkt.src, TCP, pkt.dport, pkt.sport, int(TcpFlags.RST), pkt.ack, 0)
    ack = (pkt.seq + pkt.seg_len) % (1 << 32)
    return Packet(pkt.dst, pkt.src, TCP, pkt.dport, pkt.sport, int(TcpFlags.RST | TcpFlags.ACK), 0, ack)


ESCAPED: Final = "left un-NATed: the backend's own address reaches the client"


@dataclass(slots=True)
class NodeStats:
    """What a node saw: drops by reason, conntrack INVALID/IGNORE by reason, escapes."""

    forwarded: int = 0
    delivered_local: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    ignored_by_reason: dict[str, int] = field(default_factory=dict)
    unnated_escapes: int = 0


# Observers see every decision: (node, packet as it left or died, in_iface, out_iface, ct result, note).
Observer = Callable[["Node", Packet, str | None, str | None, CtResult | None, str], None]


def _count(d: dict[str, int], key: str) -> None:
    d[key] = d.get(key, 0) + 1


class Node:
    def __init__(
        self, name: str, sched: Scheduler, engine: Engine, ct: Conntrack, state: EngineState
    ) -> None:
        self.name = name
        self.sched = sched
        self.engine = engine
        self.ct = ct
        self.state = state
        self.net = NodeNet()
        self.out: dict[str, Transmit] = {}
        self.local_input: Transmit | None = None
        self.stats = NodeStats()
        self.observers: list[Observer] = []
        # Called with (packet, in_iface) before a packet that arrives is evaluated (fault injection).
        self.on_arrival: list[Callable[[Packet, str], None]] = []
        self.annotate = False  # write what the node decided into pkt.notes (pcapng comments)
        self._last: CtResult | None = None
        self.tracker = LinuxTracker(ct, self._on_verdict)
        self._path: HookWalker | None = None  # built on the first packet, rebuilt if the engine changes
        self._path_engine: Engine | None = None  # the engine `_path` was built from
        # nftables base chains the node holds besides iptables' tables (kube-proxy's nftables mode)
        self.nft: NftEngine | None = None
        self._path_nft: NftEngine | None = None
        # Reply tuples (src, sport, dst, dport) of connections this node DNATed: a packet leaving
        # with one of them untranslated escaped the reverse NAT.
        self._dnat_replies: set[tuple[int, int, int, int]] = set()
        self._dnat_reply_keys: set[int] = set()  # the same connections by packed reply key

    # -- wiring -----------------------------------------------------------------------------
    def add_interface(self, iface: str, addr: int | None, transmit: Transmit) -> None:
        self.out[iface] = transmit
        self.net.addrs[iface] = (addr,) if addr is not None else ()
        self.net.refresh()

    def add_route(self, network: int, mask: int, iface: str) -> None:
        self.net.routes.append(Route(network & mask, mask, iface))

    def receiver(self, iface: str) -> Transmit:
        """The callable a link calls to hand this node a packet arriving on `iface`."""

        def deliver(pkt: Packet) -> None:  # every arriving packet: the arrival hooks, then the walk
            for hook in self.on_arrival:
                hook(pkt, iface)
            self._evaluate(pkt, Skb(0, iface), local_out=False)  # mark 0, in_iface

        return deliver

    # -- the packet path --------------------------------------------------------------------
    def output(self, pkt: Packet) -> None:
        """A packet the node itself sends (its own sockets)."""
        self._evaluate(pkt, Skb(), local_out=True)

    def _evaluate(self, pkt: Packet, skb: Skb, *, local_out: bool) -> None:
        path = self._path
        if (
            path is None
            or self._path_engine is not self.engine
            or self._path_nft is not self.nft
            or not path.serves(self.net, self.tracker, self.state)
        ):
            path = self._path = HookWalker(self.base_chains(), self.net, self.tracker, self.state)
            self._path_engine, self._path_nft = self.engine, self.nft
        before = (pkt.src, pkt.sport, pkt.dst, pkt.dport) if self.annotate else None
        delivery = path.run(pkt, skb, self.sched.now_ns, local_out)
        # _on_verdict sets _last during path.run; it is cleared after reading (not before the run: the
        # compiler would take the None just assigned as the attribute's type for the read below)
        res = self._last
        self._last = None
        if before is not None:
            pkt.notes = _notes(before, pkt, res)
        if delivery == "dropped":
            reason = path.reason or f"{path.hook.value}: rule verdict {path.verdict}"
            _count(self.stats.drops, reason)
            if self.observers:
                self._observe(pkt, skb.in_iface, skb.out_iface, res, f"dropped: {reason}")
            if path.verdict == "REJECT":
                self._reject(pkt, path.reject_with)
            return
        if delivery == "local":
            self.stats.delivered_local += 1
            if self.observers:
                self._observe(pkt, skb.in_iface, None, res, "delivered to the node")
            if self.local_input is None:
                _count(self.stats.drops, "no local stack")
            else:
                self.local_input(pkt)
            return
        self._out(pkt, skb.in_iface, skb.out_iface or "", res)

    def base_chains(self) -> list[BaseChain]:
        """The chains the node's hooks run: its iptables rules' built-in chains and its nftables base
        chains (IPv4), interleaved by priority."""
        chains = base_chains(self.engine)
        if self.nft is not None:
            chains += nft_base_chains(self.nft, 4)
        return chains

    def _reject(self, pkt: Packet, reject_with: str | None) -> None:
        """The REJECT target's answer (`nf_send_unreach` / `nf_send_reset`), sent by the node itself
        through its OUTPUT path: an ICMP error quoting the packet, or a TCP RST for `tcp-reset`."""
        if pkt.proto == ICMP and pkt.icmp_type in ICMP_ERRORS:
            return  # never an error about an error
        kind = reject_with or "icmp-port-unreachable"
        if kind == "tcp-reset":
            if pkt.proto == TCP and not pkt.flags & TcpFlags.RST:
                self.output(rst_for(pkt))
            return
        route = self.net.route(pkt.src)
        src = self.net.primary(route.dev if route else None) or next(
            (a[0] for a in self.net.addrs.values() if a), None
        )
        if src is None:
            return
        code = REJECT_CODES.get(kind, 3)
        self.output(Packet(src, pkt.src, ICMP, icmp_type=3, icmp_code=code, inner=pkt.copy()))

    def _out(self, pkt: Packet, in_iface: str | None, out_iface: str, res: CtResult | None) -> None:
        note = ""
        if pkt.proto == TCP:
            entry = res.entry if res is not None else None
            if entry is not None and entry.status & IPS_DST_NAT and res is not None and res.direction == 0:
                if entry.reply_key not in self._dnat_reply_keys:
                    self._dnat_reply_keys.add(entry.reply_key)
                    reply = entry.reply
                    self._dnat_replies.add((reply.src, reply.sport, reply.dst, reply.dport))
            elif self._dnat_replies and (pkt.src, pkt.sport, pkt.dst, pkt.dport) in self._dnat_replies:
                self.stats.unnated_escapes += 1
                note = ESCAPED
                if self.annotate:
                    pkt.notes.append(f"{self.name}: {ESCAPED}")
        self.stats.forwarded += 1
        if self.observers:
            self._observe(pkt, in_iface, out_iface, res, note)
        self.out[out_iface](pkt)

    def _on_verdict(self, pkt: Packet, res: CtResult) -> None:
        self._last = res
        if res.reason:
            if res.ctstate == "INVALID" and res.verdict != "DROP":
                _count(self.stats.invalid_by_reason, res.reason)
            elif res.ignored:
                _count(self.stats.ignored_by_reason, res.reason)

    def _observe(
        self, pkt: Packet, in_iface: str | None, out_iface: str | None, res: CtResult | None, note: str
    ) -> None:
        for observer in self.observers:
            observer(self, pkt, in_iface, out_iface, res, note)


def _notes(before: tuple[int, int, int, int], pkt: Packet, res: CtResult | None) -> list[str]:
    """What Wireshark cannot know: conntrack's verdict and the translations this node made."""
    notes = []
    if res is not None and res.reason and (res.ctstate == "INVALID" or res.ignored):
        notes.append(f"conntrack {'IGNORE' if res.ignored else 'INVALID'}: {res.reason}")
    src, sport, dst, dport = before
    reply = res is not None and res.direction == 1
    if (dst, dport) != (pkt.dst, pkt.dport):
        what = "reverse SNAT: dst" if reply else "DNAT"
        notes.append(f"{what} {fmt_ipport(dst, dport)} -> {fmt_ipport(pkt.dst, pkt.dport)}")
    if (src, sport) != (pkt.src, pkt.sport):
        what = "reverse DNAT: src" if reply else "SNAT"
        notes.append(f"{what} {fmt_ipport(src, sport)} -> {fmt_ipport(pkt.src, pkt.sport)}")
    return notes
