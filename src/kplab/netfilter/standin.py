"""A stand-in conntrack for the rule engine, until (or instead of) the real tracker.

Every packet gets the state the caller chose (`NEW` by default; `INVALID` gives no entry,
`UNTRACKED` the untracked pseudo-entry). A NAT decision is bound to the view and applied to the
packet directly (first address and port of the range, as nf_nat_core does for a free tuple). It
keeps nothing between packets: one view per lookup. It implements `hooks.Tracker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.netfilter.ctview import CtStatus, CtView, FiveTuple, Nat
from kplab.netfilter.hooks import Hook, Manip
from kplab.netfilter.state import Skb
from kplab.packet import Packet


@dataclass(slots=True)
class StandInTracker:
    state: str = "NEW"
    mark: int = 0
    status: int = 0
    direction: str = "ORIGINAL"
    _bindings: dict[int, tuple[CtView, dict[Manip, Nat | None]]] = field(default_factory=dict)

    def lookup(self, pkt: Packet, skb: Skb, hook: Hook, now_ns: int) -> CtView | None:
        if self.state == "INVALID":
            return None
        if self.state == "UNTRACKED":
            return CtView("UNTRACKED")
        orig = FiveTuple(pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport)
        reply = FiveTuple(pkt.dst, pkt.src, pkt.proto, pkt.dport, pkt.sport)
        if self.direction == "REPLY":
            orig, reply = reply, orig
        return CtView(self.state, self.direction, self.status, orig, reply, self.mark)

    def _binds(self, view: CtView) -> dict[Manip, Nat | None]:
        found = self._bindings.get(id(view))
        if found is None or found[0] is not view:
            found = self._bindings[id(view)] = (view, {})
        return found[1]

    def nat_pending(self, view: CtView, manip: Manip) -> bool:
        return view.state == "NEW" and manip not in self._binds(view)

    def bind_nat(self, view: CtView, manip: Manip, nat: Nat | None, pkt: Packet, now_ns: int) -> bool:
        self._binds(view)[manip] = nat
        if nat is None or view.orig is None or view.reply is None:
            return True
        addr, port = _target(nat, pkt, manip)
        reply = view.reply
        if manip is Manip.DST:
            view.reply = reply._replace(src=addr, sport=port)
            view.status |= CtStatus.DST_NAT
        else:
            view.reply = reply._replace(dst=addr, dport=port)
            view.status |= CtStatus.SRC_NAT
        return True

    def apply_nat(self, view: CtView, manip: Manip, pkt: Packet) -> None:
        nat = self._binds(view).get(manip)
        if nat is None or view.direction != "ORIGINAL":
            return
        addr, port = _target(nat, pkt, manip)
        if manip is Manip.DST:
            pkt.dst, pkt.dport = addr, port
        else:
            pkt.src, pkt.sport = addr, port

    def confirm(self, view: CtView, pkt: Packet, skb: Skb, now_ns: int) -> bool:
        view.status |= CtStatus.CONFIRMED
        return True


def _target(nat: Nat, pkt: Packet, manip: Manip) -> tuple[int, int]:
    """The address and port a binding gives: the range's first ones, or the packet's own."""
    keep_addr, keep_port = (pkt.dst, pkt.dport) if manip is Manip.DST else (pkt.src, pkt.sport)
    addr = nat.addr_min if nat.addr_min is not None else keep_addr
    port = nat.port_min if nat.port_min is not None else keep_port
    return addr, port
