"""The vocabulary of a walk through a node's hooks, shared by the traced walk (`traversal`) and the
emulator's untraced one (`fastpath`): hooks, NAT manips, the conntrack `Tracker` protocol (see
`traversal`'s docstring), the `NodeVerdict`, and how a walk stops."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from kplab.netfilter.ctview import CtView, Nat
from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.node import NodeNet
from kplab.netfilter.state import Skb, Verdict
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


def _complete(node: NodeNet, nat: Nat | None, hook: Hook, skb: Skb) -> Nat | None:
    """MASQUERADE takes the address `NodeNet.masquerade_source` selects, REDIRECT the input interface's
    (or loopback)."""
    if nat is None or nat.kind not in ("MASQUERADE", "REDIRECT"):
        return nat
    if nat.kind == "MASQUERADE":
        iface = skb.out_iface
        addr = node.masquerade_source(iface)
        if addr is None:
            raise _Stop(DROP, hook, f"MASQUERADE: no address on {iface} nor on any other interface")
    else:
        iface = skb.in_iface
        addr = node.primary(iface if hook is not Hook.OUTPUT else "lo")
        if addr is None:
            raise _Stop(DROP, hook, f"REDIRECT: no address on interface {iface}")
    return replace(nat, addr_min=addr, addr_max=addr)


class _Stop(Exception):
    def __init__(self, verdict: int, hook: Hook, reason: str = "") -> None:
        self.verdict, self.hook, self.reason = verdict, hook, reason
