"""What the rules see of conntrack: the contract between the tracker and the rule engine.

The tracker (`kplab.netfilter.conntrack`) attaches a `CtView` to each packet it looked up;
the engine's `conntrack`/`state`/`connmark` matches and the CONNMARK/CT targets read and write it.
A packet with no view at all (`None`) is INVALID to the rules, as an skb with no ct is in the
kernel; `UNTRACKED` is a view with state "UNTRACKED" (raw table `-j CT --notrack`/`NOTRACK`).

`Nat` is what a nat-table rule decided for a NEW connection; the tracker binds it to the entry
(choosing a free port where needed, as nf_nat_core does) and applies it to every later packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Final, NamedTuple, TypeAlias

# The tracker's own reference for a packet's lookup, opaque to rules. A module-level name: mypyc's
# dataclasses look their field types up in the module's globals, where the builtin `object` is not.
Handle: TypeAlias = object


class FiveTuple(NamedTuple):
    src: int
    dst: int
    proto: int
    sport: int
    dport: int


class CtStatus(IntFlag):
    """The IPS_* status bits that `--ctstatus` can test (kernel values)."""

    EXPECTED = 1 << 0
    SEEN_REPLY = 1 << 1
    ASSURED = 1 << 2
    CONFIRMED = 1 << 3
    SRC_NAT = 1 << 4
    DST_NAT = 1 << 5


CT_STATES: Final = ("INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED")


@dataclass(slots=True, init=False)
class CtView:
    """The conntrack facts a rule can test about the packet being evaluated.

    `state` is the packet's ctinfo as `--ctstate` names it (NEW, ESTABLISHED, RELATED,
    UNTRACKED). `direction` is ORIGINAL or REPLY. `orig`/`reply` are the entry's tuples; the
    virtual states SNAT/DNAT are derived from them (reply.dst != orig.src / reply.src != orig.dst).
    `mark` is the connection mark (CONNMARK writes it back here).
    """

    state: str
    direction: str = "ORIGINAL"
    status: int = 0
    orig: FiveTuple | None = None
    reply: FiveTuple | None = None
    mark: int = 0
    expires_s: int = 0
    handle: Handle = None  # the tracker's own reference for this packet's lookup (opaque to rules)

    def __init__(
        self,
        state: str,
        direction: str = "ORIGINAL",
        status: int = 0,
        orig: FiveTuple | None = None,
        reply: FiveTuple | None = None,
        mark: int = 0,
        expires_s: int = 0,
        handle: Handle = None,
    ) -> None:
        # written out: the dataclass's generated __init__ runs interpreted, once per packet
        self.state = state
        self.direction = direction
        self.status = status
        self.orig = orig
        self.reply = reply
        self.mark = mark
        self.expires_s = expires_s
        self.handle = handle

    @property
    def dnat(self) -> bool:
        return self.orig is not None and self.reply is not None and self.reply.src != self.orig.dst

    @property
    def snat(self) -> bool:
        return self.orig is not None and self.reply is not None and self.reply.dst != self.orig.src


@dataclass(frozen=True, slots=True)
class Nat:
    """A NAT decision of a nat-table rule: DNAT/SNAT/MASQUERADE/REDIRECT.

    Address and port ranges are inclusive; `None` means "keep" (ports) or, for MASQUERADE,
    "the address of the outgoing interface" (the stack fills it in).
    """

    kind: str  # "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT"
    addr_min: int | None = None
    addr_max: int | None = None
    port_min: int | None = None
    port_max: int | None = None
    random: bool = False
    random_fully: bool = False
    persistent: bool = False


class CtDrop(Exception):
    """Raised by a tracker's `lookup` when conntrack itself drops the packet (NF_DROP): the table
    is full and nothing could be evicted. The message is the kernel's reason."""
