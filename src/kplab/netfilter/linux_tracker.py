"""The real conntrack (`kplab.netfilter.conntrack`) behind the engine's `hooks.Tracker` protocol.

The engine asks for a `CtView` per packet; the tracker's answer (`CtResult`: entry, direction,
verdict, reason) rides along inside the view (`CtView.handle`) so that NAT binding,
translation and confirmation act on the same entry. `on_verdict` sees every lookup (the node
counts INVALID and IGNORE reasons with it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from kplab.netfilter.conntrack import Conntrack, CtResult
from kplab.netfilter.conntrack import nat as natmod
from kplab.netfilter.conntrack.entry import IPS_CONFIRMED, IPS_DYING, unpack
from kplab.netfilter.conntrack.profiles import S
from kplab.netfilter.ctview import CtDrop, CtView, FiveTuple, Nat
from kplab.netfilter.hooks import Hook, Manip
from kplab.netfilter.state import Skb
from kplab.packet import Packet

_MANIP_HOOK: Final = {Manip.DST: "PREROUTING", Manip.SRC: "POSTROUTING"}
_DST: Final = Manip.DST
_CONFIRMED_OR_DYING: Final = IPS_CONFIRMED | IPS_DYING
_TUPLE_CACHE_MAX: Final = 4096  # packed key -> FiveTuple, for the views of the busiest connections


class LinuxTracker:
    """Implements `hooks.Tracker` over one network namespace's `Conntrack`."""

    __slots__ = ("_tuples", "ct", "on_verdict")

    def __init__(self, ct: Conntrack, on_verdict: Callable[[Packet, CtResult], None] | None = None) -> None:
        self.ct = ct
        self.on_verdict = on_verdict
        self._tuples: dict[int, FiveTuple] = {}

    def lookup(self, pkt: Packet, skb: Skb, hook: Hook, now_ns: int) -> CtView | None:
        res = self.ct.lookup(pkt, hook._value_, now_ns)
        if self.on_verdict is not None:
            self.on_verdict(pkt, res)
        if res.verdict == "DROP":
            raise CtDrop(res.reason or "table full, dropping packet")
        entry = res.entry
        if entry is None or res.ctstate == "UNTRACKED":
            view = res.view(now_ns)
            if view is not None:
                view.handle = res
            return view
        # `CtResult.view`, with the entry's tuples unpacked once per key rather than per packet
        return CtView(
            res.ctstate,
            "REPLY" if res.direction else "ORIGINAL",
            entry.status & 0xFFFF,
            self._tuples.get(entry.orig_key) or self._tuple(entry.orig_key),
            self._tuples.get(entry.reply_key) or self._tuple(entry.reply_key),
            entry.mark,
            max(0, (entry.timeout_ns - now_ns) // S),
            res,
        )

    def _tuple(self, key: int) -> FiveTuple:
        tuples = self._tuples
        found = tuples.get(key)
        if found is None:
            if len(tuples) >= _TUPLE_CACHE_MAX:
                tuples.clear()
            found = tuples[key] = unpack(key)
        return found

    def nat_pending(self, view: CtView, manip: Manip) -> bool:
        res = view.handle
        if not isinstance(res, CtResult):
            return False
        entry = res.entry
        if entry is None or entry.status & IPS_CONFIRMED or res.related:
            return False  # the common case, answered before asking the table (which says the same)
        return self.ct.nat_pending(res, "PREROUTING" if manip is _DST else "POSTROUTING")

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
        res = view.handle
        if not isinstance(res, CtResult):
            return
        entry = res.entry
        if entry is None:
            return
        dst = manip is _DST
        if entry.status & IPS_CONFIRMED or res.related:  # nothing left to bind: `nf_nat_packet` only
            direction = res.direction
            if entry.status & natmod.manip_bit(dst, direction):
                key = entry.orig_key if direction else entry.reply_key
                natmod.rewrite(pkt, self._tuples.get(key) or self._tuple(key), dst, res.related)
            return
        self.ct.apply_nat(pkt, res, "PREROUTING" if dst else "POSTROUTING")

    def confirm(self, view: CtView, pkt: Packet, skb: Skb, now_ns: int) -> bool:
        res = _result(view)
        if res is None:
            return True
        entry = res.entry
        if entry is None or entry.status & _CONFIRMED_OR_DYING:
            return True  # the common case, answered before asking the table (which says the same)
        return self.ct.confirm(res, now_ns)


def _result(view: CtView) -> CtResult | None:
    handle = view.handle
    return handle if isinstance(handle, CtResult) else None
