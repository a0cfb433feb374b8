"""The real conntrack (`kplab.netfilter.conntrack`) behind the engine's `traversal.Tracker` protocol.

The engine asks for a `CtView` per packet; the tracker's answer (`CtResult`: entry, direction,
verdict, reason) rides along inside the view (`CtView.handle`) so that NAT binding,
translation and confirmation act on the same entry. `on_verdict` sees every lookup (the node
counts INVALID and IGNORE reasons with it).
"""

from __future__ import annotations

from collections.abc import Callable

from kplab.netfilter.conntrack import Conntrack, CtResult
from kplab.netfilter.ctview import CtDrop, CtView, Nat
from kplab.netfilter.state import Skb
from kplab.netfilter.traversal import Hook, Manip
from kplab.packet import Packet

_MANIP_HOOK = {Manip.DST: "PREROUTING", Manip.SRC: "POSTROUTING"}


class LinuxTracker:
    """Implements `traversal.Tracker` over one network namespace's `Conntrack`."""

    __slots__ = ("ct", "on_verdict")

    def __init__(self, ct: Conntrack, on_verdict: Callable[[Packet, CtResult], None] | None = None) -> None:
        self.ct = ct
        self.on_verdict = on_verdict

    def lookup(self, pkt: Packet, skb: Skb, hook: Hook, now_ns: int) -> CtView | None:
        res = self.ct.lookup(pkt, hook.value, now_ns)
        if self.on_verdict is not None:
            self.on_verdict(pkt, res)
        if res.verdict == "DROP":
            raise CtDrop(res.reason or "table full, dropping packet")
        view = res.view(now_ns)
        if view is not None:
            view.handle = res
        return view

    def nat_pending(self, view: CtView, manip: Manip) -> bool:
        res = _result(view)
        return res is not None and self.ct.nat_pending(res, _MANIP_HOOK[manip])

    def bind_nat(self, view: CtView, manip: Manip, nat: Nat | None, pkt: Packet, now_ns: int) -> bool:
        res = _result(view)
        if res is None:
            return True
        # The engine already filled MASQUERADE/REDIRECT's address in (the interface's own).
        out_addr = nat.addr_min if nat is not None and nat.kind in ("MASQUERADE", "REDIRECT") else None
        self.ct.bind_nat(res, nat, _MANIP_HOOK[manip], out_addr)
        if res.entry is not None:  # the rules after this hook see the translated tuples
            view.reply = res.entry.reply
            view.status = res.entry.status & 0xFFFF
        return True

    def apply_nat(self, view: CtView, manip: Manip, pkt: Packet) -> None:
        res = _result(view)
        if res is not None:
            self.ct.apply_nat(pkt, res, _MANIP_HOOK[manip])

    def confirm(self, view: CtView, pkt: Packet, skb: Skb, now_ns: int) -> bool:
        res = _result(view)
        return res is None or self.ct.confirm(res, now_ns)


def _result(view: CtView) -> CtResult | None:
    handle = view.handle
    return handle if isinstance(handle, CtResult) else None
