"""An nftables ruleset as plain data, whatever it was read from (`nft list ruleset` text, knftables
`add ...` transactions, `nft -j list ruleset` JSON).

Values are already typed: addresses (IPv4 or IPv6) and ports and marks are ints, interface names
are strings, `ct state`/`ct status` are bit masks, concatenations are tuples. A set element's key
part is a value, or an inclusive `Interval` (a prefix or a range). Every rule keeps its `Source`
(file and line, or for JSON the item's index) and its text for traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.netfilter.model import Source

Scalar = int | str


@dataclass(frozen=True, slots=True)
class Interval:
    """An inclusive range of a value: a prefix (`10.0.0.0/8`) or a range (`1000-2000`)."""

    lo: int
    hi: int


Part = Scalar | Interval
Key = tuple[Part, ...]  # one part per concatenated type


# -- expressions (what a statement reads) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payload:
    """`ip saddr`, `ip6 daddr`, `th dport`, `tcp dport`, `ip protocol`..."""

    base: str
    field: str


@dataclass(frozen=True, slots=True)
class Meta:
    key: str  # l4proto, mark, iifname, oifname, nfproto, protocol, iif, oif


@dataclass(frozen=True, slots=True)
class Ct:
    key: str  # state, status, mark, direction


@dataclass(frozen=True, slots=True)
class Fib:
    flags: tuple[str, ...]  # ("daddr",), ("saddr", "iif")
    result: str  # type, oif, oifname


@dataclass(frozen=True, slots=True)
class Numgen:
    mode: str  # random, inc
    mod: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Concat:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Binop:
    """`meta mark & 0x4000`: op is one of & | ^ << >>."""

    op: str
    left: Expr
    right: int


@dataclass(frozen=True, slots=True)
class Const:
    """A value written where an expression goes (`meta mark set 0x10`)."""

    value: Scalar


Expr = Payload | Meta | Ct | Fib | Numgen | Concat | Binop | Const


# -- right-hand sides -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetRef:
    """`@name`: a named set or map of the same table."""

    name: str


@dataclass(frozen=True, slots=True)
class AnonSet:
    """`{ a, b/24, c-d }`: an anonymous set, one key per element."""

    keys: tuple[Key, ...]


Rhs = Key | SetRef | AnonSet  # a Key of one or more parts is a plain value


# -- statements -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerdictStmt:
    kind: str  # accept, drop, continue, return, jump, goto, queue
    target: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """`left op right`; op is ==, !=, <, >, <=, >= or `in` (a flags test: any bit in common)."""

    left: Expr
    op: str
    right: Rhs


@dataclass(frozen=True, slots=True)
class AnonMap:
    """`{ 0 : goto a, 1 : goto b }`."""

    entries: tuple[tuple[Key, VerdictStmt], ...]


@dataclass(frozen=True, slots=True)
class VMap:
    key: Expr
    data: SetRef | AnonMap


@dataclass(frozen=True, slots=True)
class NatStmt:
    """dnat / snat / masquerade / redirect; `addr`/`port` None = keep (or the interface's address)."""

    kind: str
    addr: int | None = None
    addr_hi: int | None = None
    port: int | None = None
    port_hi: int | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reject:
    type: str = "icmp"  # icmp, icmpx, icmpv6, tcp reset
    code: str = "port-unreachable"


@dataclass(frozen=True, slots=True)
class Counter:
    pass


@dataclass(frozen=True, slots=True)
class Log:
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class SetStmt:
    """`meta mark set EXPR` (key Meta) or `ct mark set EXPR` (key Ct)."""

    key: Meta | Ct
    value: Expr


@dataclass(frozen=True, slots=True)
class SetUpdate:
    """`update @set { ip saddr }` / `add @set { ... }`: dynamic sets (ClientIP affinity)."""

    op: str  # add, update
    set: str
    key: Expr
    timeout_s: int | None = None


@dataclass(frozen=True, slots=True)
class Notrack:
    pass


@dataclass(frozen=True, slots=True)
class Unknown:
    """Something kplab does not evaluate; the compiler applies the `unknown` policy to it."""

    text: str


Stmt = Match | VerdictStmt | VMap | NatStmt | Reject | Counter | Log | SetStmt | SetUpdate | Notrack | Unknown


# -- objects ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Rule:
    stmts: list[Stmt]
    source: Source
    text: str  # as written (or rendered from JSON), for traces
    comment: str | None = None


@dataclass(slots=True)
class Chain:
    name: str
    source: Source
    type: str | None = None  # filter, nat, route; None = a regular chain
    hook: str | None = None  # prerouting, input, forward, output, postrouting, ingress
    priority: int = 0
    policy: str = "accept"
    rules: list[Rule] = field(default_factory=list)

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass(slots=True)
class Elem:
    key: Key
    data: VerdictStmt | Scalar | None = None
    comment: str | None = None


@dataclass(slots=True)
class NSet:
    """A named set, or (with `data_type`) a map; `verdict` maps are vmaps."""

    name: str
    source: Source
    key_types: tuple[str, ...]
    data_type: str | None = None
    flags: tuple[str, ...] = ()
    timeout_s: int | None = None
    comment: str | None = None
    elements: list[Elem] = field(default_factory=list)

    @property
    def is_map(self) -> bool:
        return self.data_type is not None


@dataclass(slots=True)
class Table:
    family: str  # ip, ip6, inet, arp, bridge, netdev
    name: str
    source: Source
    comment: str | None = None
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, NSet] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.family} {self.name}"


@dataclass(slots=True)
class NftRuleset:
    file: str
    json: bool = False  # read from `nft -j` (errors name JSON paths, not lines)
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)

    def table(self, family: str, name: str) -> Table | None:
        return self.tables.get((family, name))

    def base_chains(self) -> list[tuple[Table, Chain]]:
        """Every base chain, by hook, then priority, then table order (as registered)."""
        found = [(t, c) for t in self.tables.values() for c in t.chains.values() if c.is_base]
        return sorted(found, key=lambda tc: (tc[1].hook or "", tc[1].priority))
