"""What rules read and write besides the packet: skb metadata, per-node match state, the evaluation env.

- `Skb` is the per-packet metadata (`skb->mark`, interfaces, the attached conntrack view, bridge
  port info) plus what the rules decided for it (a NAT decision, REJECT's reply type, TRACE).
- `EngineState` is the per-node state that survives between packets: `recent` lists,
  `limit` token buckets, `statistic --mode nth` counters, nfacct counters, the members of
  nftables dynamic sets (ClientIP affinity), the seeded RNG.
- `Env` bundles, for one evaluation, the time (`now_ns`), the state, the node's local addresses
  and the caller's ipset membership; `chooser` replaces random draws when all branches are
  enumerated.

Nothing here does I/O or reads a clock: time and randomness come from the caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from kplab.netfilter.ctview import CtView, Nat
from kplab.packet import Packet


class Verdict(IntEnum):
    """Rule and chain outcomes. DROP/ACCEPT/QUEUE are the kernel's NF_* values; REJECT is a DROP that
    answers; CONTINUE (XT_CONTINUE) and RETURN (XT_RETURN) only exist inside a traversal."""

    DROP = 0
    ACCEPT = 1
    QUEUE = 3
    REJECT = 100
    CONTINUE = -1
    RETURN = -2


CONTINUE = int(Verdict.CONTINUE)
RETURN = int(Verdict.RETURN)


@dataclass(slots=True, init=False)
class Skb:
    """Per-packet metadata the rules see and change (the fields of `struct sk_buff` that matter).
    One per packet a node evaluates: `__init__` is written out so that the compiled build makes it
    natively (the dataclass's runs interpreted)."""

    mark: int
    in_iface: str | None
    out_iface: str | None
    ct: CtView | None
    physdev_in: str | None
    physdev_out: str | None
    bridged: bool
    nat: Nat | None  # what a nat-table rule decided during this hook
    reject_with: str | None
    traced: bool  # a TRACE target hit it
    masqueraded: bool

    def __init__(
        self,
        mark: int = 0,
        in_iface: str | None = None,
        out_iface: str | None = None,
        ct: CtView | None = None,
        physdev_in: str | None = None,
        physdev_out: str | None = None,
        bridged: bool = False,
        nat: Nat | None = None,
        reject_with: str | None = None,
        traced: bool = False,
        masqueraded: bool = False,
    ) -> None:
        self.mark = mark
        self.in_iface = in_iface
        self.out_iface = out_iface
        self.ct = ct
        self.physdev_in = physdev_in
        self.physdev_out = physdev_out
        self.bridged = bridged
        self.nat = nat
        self.reject_with = reject_with
        self.traced = traced
        self.masqueraded = masqueraded


# ipset membership: (set name, packet, directions like ("src", "dst")) -> member? None: not known
# (the rule's `--unknown` policy decides, see `matches.local.compile_set`)
SetLookup = Callable[[str, Packet, tuple[str, ...]], bool | None]


def sets_from_mapping(members: Mapping[str, frozenset[int] | set[int]]) -> SetLookup:
    """An ipset lookup for `hash:ip` sets given as {name: {address, ...}} (first direction only)."""

    def lookup(name: str, pkt: Packet, directions: tuple[str, ...]) -> bool:
        addrs = members.get(name)
        if addrs is None:
            return False
        return (pkt.src if directions[0] == "src" else pkt.dst) in addrs

    return lookup


@dataclass(slots=True)
class RecentEntry:
    """One address of a `recent` list: hit times in ns, oldest first (at most `ip_pkt_list_tot`)."""

    stamps: list[int] = field(default_factory=list)
    ttl: int = 0


@dataclass(slots=True)
class EngineState:
    """Match state that outlives one packet, per node (or per network namespace)."""

    rng: random.Random
    recent: dict[str, dict[int, RecentEntry]] = field(default_factory=dict)
    slots: dict[int, list[int]] = field(default_factory=dict)  # limit buckets, nth counters
    nfacct: dict[str, list[int]] = field(default_factory=dict)  # name -> [packets, bytes]
    recent_max_hits: int = 20  # xt_recent ip_pkt_list_tot
    dynsets: dict[str, dict[object, int]] = field(default_factory=dict)  # nft dynamic sets: key -> expiry ns

    @classmethod
    def seeded(cls, seed: int) -> EngineState:
        return cls(random.Random(seed))


@dataclass(slots=True)
class Env:
    """Everything one evaluation reads besides the packet and its skb."""

    now_ns: int
    state: EngineState
    local_addrs: frozenset[int] = frozenset()
    iface_addrs: Mapping[str, frozenset[int]] = field(default_factory=dict)
    sets: SetLookup | None = None
    chooser: Callable[[int], bool] | None = None  # statistic random: (probability * 2^31) -> taken?

    def is_local(self, addr: int) -> bool:
        """RTN_LOCAL: one of the node's addresses, or anything in 127.0.0.0/8."""
        return addr >> 24 == 127 or addr in self.local_addrs
