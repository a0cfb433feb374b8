"""The per-packet side of the nft engine: what a compiled rule is made of.

A compiled rule is a tuple of `Op`s run in order; `Op.run(ctx)` returns `NEXT` (go on with the
rule), `BREAK` (a match failed: next rule) or a verdict code (`ACCEPT`, `DROP`, `REJECT`,
`RETURN`, `CONTINUE`, `JUMP`/`GOTO` with `ctx.target` set). Loads read one value of the packet,
its skb or its conntrack entry (`None` when there is none: the rule breaks, as the kernel's
expression does). Native classes and plain ints throughout, for mypyc.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from kplab.netfilter.ctview import CtView, Nat
from kplab.netfilter.state import Env, Skb, Verdict
from kplab.packet import Packet

NEXT: Final = -1
RETURN: Final = int(Verdict.RETURN)  # -2
BREAK: Final = -3
CONTINUE: Final = -4
JUMP: Final = -10
GOTO: Final = -11
ACCEPT: Final = int(Verdict.ACCEPT)
DROP: Final = int(Verdict.DROP)
REJECT: Final = int(Verdict.REJECT)
QUEUE: Final = int(Verdict.QUEUE)

_CT_BITS: Final[dict[str, int]] = {"NEW": 8, "ESTABLISHED": 2, "RELATED": 4, "UNTRACKED": 64}
CT_INVALID: Final = 1
MISSING: Final = object()


class Ctx:
    """One packet's evaluation: the packet, its skb, the env, the family (4 or 6), and how
    `numgen random` draws (`pick(n) -> 0..n-1`; None: the seeded RNG, as the kernel's
    `reciprocal_scale(get_random_u32(), n)`). `loopback_local=False` is the stateless tracer's
    LOCAL (only the node's addresses)."""

    __slots__ = ("env", "family", "loopback_local", "pick", "pkt", "skb", "target")

    def __init__(
        self,
        pkt: Packet,
        skb: Skb,
        env: Env,
        family: int = 4,
        pick: Callable[[int], int] | None = None,
        loopback_local: bool = True,
    ) -> None:
        self.pkt, self.skb, self.env, self.family = pkt, skb, env, family
        self.pick = pick
        self.loopback_local = loopback_local
        self.target: CChain | None = None

    def is_local(self, addr: int) -> bool:
        if addr in self.env.local_addrs:
            return True
        if not self.loopback_local:
            return False
        return addr >> 24 == 127 if self.family == 4 else addr == 1

    def draw(self, n: int) -> int:
        if self.pick is not None:
            return self.pick(n)
        return (self.env.state.rng.getrandbits(32) * n) >> 32


class CRule:
    __slots__ = ("number", "ops", "source_file", "source_line", "text")

    def __init__(
        self, number: int, ops: tuple[Op, ...], text: str, source_file: str, source_line: int
    ) -> None:
        self.number, self.ops, self.text = number, ops, text
        self.source_file, self.source_line = source_file, source_line


class CChain:
    __slots__ = ("family", "hook", "name", "policy", "priority", "rules", "table", "type")

    def __init__(self, table: str, name: str) -> None:
        self.table, self.name = table, name
        self.family = 4
        self.type: str | None = None
        self.hook: str | None = None
        self.priority = 0
        self.policy = ACCEPT
        self.rules: list[CRule] = []


# -- loads ------------------------------------------------------------------------------------------


class Load:
    def get(self, c: Ctx) -> object:
        raise NotImplementedError


class LoadSaddr(Load):
    def __init__(self, family: int) -> None:
        self.family = family

    def get(self, c: Ctx) -> object:
        return c.pkt.src if c.family == self.family else None


class LoadDaddr(Load):
    def __init__(self, family: int) -> None:
        self.family = family

    def get(self, c: Ctx) -> object:
        return c.pkt.dst if c.family == self.family else None


class LoadL4proto(Load):
    def get(self, c: Ctx) -> object:
        return c.pkt.proto


class LoadPort(Load):
    """`th dport` (any protocol with ports) or `tcp dport` (only that protocol)."""

    def __init__(self, proto: int, dest: bool) -> None:
        self.proto, self.dest = proto, dest

    def get(self, c: Ctx) -> object:
        proto = c.pkt.proto
        if proto not in (6, 17, 132, 136) or (self.proto and proto != self.proto):
            return None
        return c.pkt.dport if self.dest else c.pkt.sport


class LoadMark(Load):
    def get(self, c: Ctx) -> object:
        return c.skb.mark


class LoadIfname(Load):
    def __init__(self, out: bool) -> None:
        self.out = out

    def get(self, c: Ctx) -> object:
        name = c.skb.out_iface if self.out else c.skb.in_iface
        return name if name is not None else ""


class LoadNfproto(Load):
    def get(self, c: Ctx) -> object:
        return 2 if c.family == 4 else 10


class LoadCtState(Load):
    def get(self, c: Ctx) -> object:
        view = c.skb.ct
        return CT_INVALID if view is None else _CT_BITS.get(view.state, CT_INVALID)


class LoadCtStatus(Load):
    def get(self, c: Ctx) -> object:
        view = c.skb.ct
        return None if view is None else view.status


class LoadCtMark(Load):
    def get(self, c: Ctx) -> object:
        view = c.skb.ct
        return None if view is None else view.mark


class LoadCtDirection(Load):
    def get(self, c: Ctx) -> object:
        view = c.skb.ct
        return None if view is None else (0 if view.direction == "ORIGINAL" else 1)


class LoadFibType(Load):
    def __init__(self, source: bool) -> None:
        self.source = source

    def get(self, c: Ctx) -> object:
        addr = c.pkt.src if self.source else c.pkt.dst
        if c.is_local(addr):
            return "local"
        if c.family == 4 and addr >> 28 == 14:
            return "multicast"
        if c.family == 4 and addr == 0xFFFFFFFF:
            return "broadcast"
        return "unicast"


class LoadNumgen(Load):
    def __init__(self, mod: int, offset: int) -> None:
        self.mod, self.offset = mod, offset

    def get(self, c: Ctx) -> object:
        return c.draw(self.mod) + self.offset


class LoadConcat(Load):
    def __init__(self, parts: tuple[Load, ...]) -> None:
        self.parts = parts

    def get(self, c: Ctx) -> object:
        out = []
        for part in self.parts:
            value = part.get(c)
            if value is None:
                return None
            out.append(value)
        return tuple(out)


class LoadBinop(Load):
    def __init__(self, op: str, left: Load, right: int) -> None:
        self.op, self.left, self.right = op, left, right

    def get(self, c: Ctx) -> object:
        value = self.left.get(c)
        if not isinstance(value, int):
            return None
        op, right = self.op, self.right
        if op == "&":
            return value & right
        if op == "|":
            return value | right
        if op == "^":
            return value ^ right
        return value << right if op == "<<" else value >> right


class LoadConst(Load):
    def __init__(self, value: object) -> None:
        self.value = value

    def get(self, c: Ctx) -> object:
        return self.value


# -- sets -------------------------------------------------------------------------------------------


class CSet:
    """A set or map: exact keys in a dict, interval elements (prefixes, ranges) tested in order.
    A key is a scalar for one type, a tuple for a concatenation; an interval part is (lo, hi).
    Dynamic sets (`flags dynamic`) keep their members in `EngineState.dynsets`, with expiry."""

    __slots__ = ("dynamic", "exact", "key_id", "ranges", "timeout_ns")

    def __init__(self, key_id: str, dynamic: bool, timeout_ns: int) -> None:
        self.key_id, self.dynamic, self.timeout_ns = key_id, dynamic, timeout_ns
        self.exact: dict[object, object] = {}
        self.ranges: list[tuple[tuple[object, ...], object]] = []

    def find(self, key: object, c: Ctx) -> object:
        if self.dynamic:
            members = c.env.state.dynsets.get(self.key_id)
            if members is None:
                return MISSING
            expires = members.get(key)
            return True if expires is not None and expires > c.env.now_ns else MISSING
        found = self.exact.get(key, MISSING)
        if found is not MISSING or not self.ranges:
            return found
        parts = key if isinstance(key, tuple) else (key,)
        for bounds, data in self.ranges:
            if _within(parts, bounds):
                return data
        return MISSING


def _within(parts: tuple[object, ...], bounds: tuple[object, ...]) -> bool:
    for value, bound in zip(parts, bounds, strict=True):
        if isinstance(bound, tuple):
            if not isinstance(value, int) or not bound[0] <= value <= bound[1]:
                return False
        elif value != bound:
            return False
    return True


# -- ops --------------------------------------------------------------------------------------------


class Op:
    def run(self, c: Ctx) -> int:
        raise NotImplementedError


class MatchEq(Op):
    def __init__(self, load: Load, value: object, negate: bool) -> None:
        self.load, self.value, self.negate = load, value, negate

    def run(self, c: Ctx) -> int:
        got = self.load.get(c)
        if got is None:
            return BREAK
        return NEXT if (got == self.value) != self.negate else BREAK


class MatchFlags(Op):
    """`ct state new`: any of the bits."""

    def __init__(self, load: Load, mask: int) -> None:
        self.load, self.mask = load, mask

    def run(self, c: Ctx) -> int:
        got = self.load.get(c)
        return NEXT if isinstance(got, int) and got & self.mask else BREAK


class MatchCmp(Op):
    def __init__(self, load: Load, op: str, value: int) -> None:
        self.load, self.op, self.value = load, op, value

    def run(self, c: Ctx) -> int:
        got = self.load.get(c)
        if not isinstance(got, int):
            return BREAK
        op, value = self.op, self.value
        ok = (
            got < value
            if op == "<"
            else got > value
            if op == ">"
            else got <= value
            if op == "<="
            else got >= value
        )
        return NEXT if ok else BREAK


class MatchWildcard(Op):
    """`iifname "veth*"`."""

    def __init__(self, load: Load, prefix: str, negate: bool) -> None:
        self.load, self.prefix, self.negate = load, prefix, negate

    def run(self, c: Ctx) -> int:
        got = self.load.get(c)
        if not isinstance(got, str):
            return BREAK
        return NEXT if got.startswith(self.prefix) != self.negate else BREAK


class MatchSet(Op):
    """Membership in a named or anonymous set, a prefix or a range."""

    def __init__(self, load: Load, cset: CSet, negate: bool) -> None:
        self.load, self.cset, self.negate = load, cset, negate

    def run(self, c: Ctx) -> int:
        got = self.load.get(c)
        if got is None:
            return BREAK
        return NEXT if (self.cset.find(got, c) is not MISSING) != self.negate else BREAK


class VerdictOp(Op):
    def __init__(self, code: int, chain: CChain | None = None) -> None:
        self.code, self.chain = code, chain

    def run(self, c: Ctx) -> int:
        if self.chain is not None:
            c.target = self.chain
        return self.code


class VMapOp(Op):
    """`KEY vmap @map` / `vmap { ... }`: the element's verdict, or no match."""

    def __init__(self, load: Load, cset: CSet) -> None:
        self.load, self.cset = load, cset

    def run(self, c: Ctx) -> int:
        got = self.load.get(c)
        if got is None:
            return BREAK
        found = self.cset.find(got, c)
        if not isinstance(found, VerdictOp):
            return BREAK
        return found.run(c)


class NatOp(Op):
    """A NAT statement: the decision goes to `skb.nat` (the walk binds it) and the chain accepts."""

    def __init__(self, nat: Nat) -> None:
        self.nat = nat

    def run(self, c: Ctx) -> int:
        c.skb.nat = self.nat
        if self.nat.kind == "MASQUERADE":
            c.skb.masqueraded = True
        return ACCEPT


class RejectOp(Op):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def run(self, c: Ctx) -> int:
        c.skb.reject_with = self.kind
        return REJECT


class SetMarkOp(Op):
    def __init__(self, value: Load, ct: bool) -> None:
        self.value, self.ct = value, ct

    def run(self, c: Ctx) -> int:
        value = self.value.get(c)
        if not isinstance(value, int):
            return BREAK
        if self.ct:
            if c.skb.ct is not None:
                c.skb.ct.mark = value & 0xFFFFFFFF
        else:
            c.skb.mark = value & 0xFFFFFFFF
        return NEXT


class UpdateSetOp(Op):
    """`update @affinity-X { ip saddr }`: add or refresh the member with the set's timeout."""

    def __init__(self, load: Load, cset: CSet, timeout_ns: int, refresh: bool) -> None:
        self.load, self.cset, self.timeout_ns, self.refresh = load, cset, timeout_ns, refresh

    def run(self, c: Ctx) -> int:
        key = self.load.get(c)
        if key is None:
            return BREAK
        sets = c.env.state.dynsets
        members = sets.get(self.cset.key_id)
        if members is None:
            members = sets[self.cset.key_id] = {}
        now = c.env.now_ns
        current = members.get(key)
        if self.refresh or current is None or current <= now:
            members[key] = now + self.timeout_ns if self.timeout_ns else 1 << 62
        return NEXT


class NopOp(Op):
    def run(self, c: Ctx) -> int:
        return NEXT


class NotrackOp(Op):
    """`notrack`: the packet gets the untracked pseudo-entry (conntrack then leaves it alone)."""

    def run(self, c: Ctx) -> int:
        c.skb.ct = CtView("UNTRACKED")
        return NEXT


class NeverOp(Op):
    def run(self, c: Ctx) -> int:
        return BREAK
