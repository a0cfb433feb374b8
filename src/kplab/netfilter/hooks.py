"""The vocabulary of a walk through a node's hooks: hooks, priorities, NAT manips, the base-chain
and conntrack interfaces the walker (`traversal`) calls, and the `NodeVerdict` it reports.

A rule engine plugs into the walk by registering base chains (`BaseChain`): iptables' tables
(`netfilter.tables`) are one engine, an nftables ruleset is another. Conntrack plugs in as a
`Tracker`. See `traversal`'s docstring for how the walker orders and runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Protocol

from mypy_extensions import mypyc_attr

from kplab.netfilter.ctview import CtView, Nat
from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.state import Env, Skb, Verdict
from kplab.packet import Packet

ACCEPT: Final = int(Verdict.ACCEPT)
DROP: Final = int(Verdict.DROP)
REJECT: Final = int(Verdict.REJECT)
QUEUE: Final = int(Verdict.QUEUE)


def verdict_name(verdict: int) -> str:
    """ACCEPT, DROP, REJECT, QUEUE (the number itself for anything else)."""
    if verdict == ACCEPT:
        return "ACCEPT"
    if verdict == DROP:
        return "DROP"
    if verdict == REJECT:
        return "REJECT"
    return "QUEUE" if verdict == QUEUE else str(verdict)


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


# Hook priorities (include/uapi/linux/netfilter_ipv4.h, `enum nf_ip_hook_priorities`): lower runs
# first. The kernel's own steps sit at fixed ones; iptables' tables at theirs; an nftables base
# chain at whatever its `priority` says (`dstnat` = -100, `filter` = 0, `srcnat` = 100).
PRI_RAW: Final = -300
PRI_CONNTRACK: Final = -200  # nf_conntrack_in (PREROUTING, OUTPUT)
PRI_MANGLE: Final = -150
PRI_NAT_DST: Final = -100  # the NAT core (PREROUTING, OUTPUT): nat chains run inside it
PRI_FILTER: Final = 0
PRI_SECURITY: Final = 50
PRI_NAT_SRC: Final = 100  # the NAT core (INPUT, POSTROUTING)
PRI_CONNTRACK_CONFIRM: Final = 2**31 - 1  # INT_MAX (INPUT, POSTROUTING)


@mypyc_attr(allow_interpreted_subclasses=True)  # another engine's chains need not be compiled
class BaseChain:
    """A chain registered at one hook, at one priority: what a rule engine gives the hook walker.

    An iptables table's built-in chain (`netfilter.tables.TableChain`) is one; an nftables base
    chain (`type filter|route|nat hook H priority P`) is another. Subclasses implement `evaluate`:

    - `evaluate(pkt, skb, env, trace)` runs the chain for one packet and returns its verdict:
      `ACCEPT` (this chain is done with the packet; the walk goes on to the next one), `DROP`,
      `REJECT` (a DROP that answers; `skb.reject_with` says how) or `QUEUE`: anything but ACCEPT
      ends the walk. It may change the packet and `skb` (mark, ...), read conntrack's view of the
      packet in `skb.ct`, and keep state between packets in `env.state`. When `trace` is a list,
      it appends a `TraceEntry` per rule that matched, per return and per policy applied (the
      `iptables -j TRACE` / `nft monitor trace` view); when None, it does no trace bookkeeping.
    - A `nat` chain (iptables' nat table, nftables `type nat`) decides a NAT binding: it leaves a
      `ctview.Nat` in `skb.nat` (and sets `skb.masqueraded` for MASQUERADE) and returns ACCEPT.
      It is only run for the first packet of a connection (conntrack's `nat_pending`), by the
      NAT core at `PRI_NAT_DST` or `PRI_NAT_SRC`, whatever its own priority: its priority only
      orders it among the other nat chains of the hook. The first one that decides wins; the
      walker completes the decision (MASQUERADE's address) and binds it through the `Tracker`.
    - `inert()` is True when the chain can only ever say ACCEPT and change nothing (an empty
      chain with an accept policy): the untraced walk skips it; a traced one still runs it.
    """

    __slots__ = ("hook", "name", "nat", "priority", "table")

    def __init__(self, hook: Hook, priority: int, table: str, name: str, *, nat: bool = False) -> None:
        self.hook = hook
        self.priority = priority
        self.table = table  # the table (family aside) and the chain's name, for messages
        self.name = name
        self.nat = nat

    def evaluate(self, pkt: Packet, skb: Skb, env: Env, trace: list[TraceEntry] | None) -> int:
        raise NotImplementedError

    def inert(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.table}:{self.name} {self.hook.value} {self.priority}>"


class Tracker(Protocol):
    """Conntrack as the walker sees it (see `traversal`'s docstring)."""

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
