"""An `NftRuleset` compiled into chains of `ops` (see `kplab.netfilter.nft.ops`), once.

Names are resolved here: a `jump`/`goto` to a missing chain, a lookup in a missing set, a key of the
wrong arity or a loop is an `InputError` at the rule's `file:line` (`file: nftables[N]` for JSON).
`unknown` says what a statement kplab does not evaluate does: "error" (the default), "never-match"
or "always-match", as `kplab trace --unknown` has it for iptables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.errors import InputError
from kplab.netfilter.ctview import Nat
from kplab.netfilter.nft.model import (
    AnonMap,
    AnonSet,
    Binop,
    Concat,
    Const,
    Counter,
    Ct,
    Elem,
    Expr,
    Fib,
    Interval,
    Key,
    Log,
    Match,
    Meta,
    NatStmt,
    NftRuleset,
    Notrack,
    NSet,
    Numgen,
    Payload,
    Reject,
    Rule,
    SetRef,
    SetStmt,
    SetUpdate,
    Stmt,
    Table,
    VerdictStmt,
    VMap,
)
from kplab.netfilter.nft.ops import (
    ACCEPT,
    CONTINUE,
    DROP,
    GOTO,
    JUMP,
    QUEUE,
    RETURN,
    CChain,
    CRule,
    CSet,
    Load,
    LoadBinop,
    LoadConcat,
    LoadConst,
    LoadCtDirection,
    LoadCtMark,
    LoadCtState,
    LoadCtStatus,
    LoadDaddr,
    LoadFibType,
    LoadIfname,
    LoadL4proto,
    LoadMark,
    LoadNfproto,
    LoadNumgen,
    LoadPort,
    LoadSaddr,
    MatchCmp,
    MatchEq,
    MatchFlags,
    MatchSet,
    MatchWildcard,
    NatOp,
    NeverOp,
    NopOp,
    NotrackOp,
    Op,
    RejectOp,
    SetMarkOp,
    UpdateSetOp,
    VerdictOp,
    VMapOp,
)
from kplab.netfilter.nft.values import FLAG_TYPES, PROTOCOLS, expr_type

FAMILY_NUMBERS = {"ip": 4, "ip6": 6, "inet": 0}
HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
_VERDICT_CODES = {"accept": ACCEPT, "drop": DROP, "return": RETURN, "continue": CONTINUE, "queue": QUEUE}
_REJECT_KINDS = {
    "port-unreachable": "icmp-port-unreachable",
    "host-unreachable": "icmp-host-unreachable",
    "net-unreachable": "icmp-net-unreachable",
    "admin-prohibited": "icmp-admin-prohibited",
    "prot-unreachable": "icmp-proto-unreachable",
}


@dataclass(slots=True)
class NftEngine:
    """Compiled tables (`tables["ip kube-proxy"]["services"]`) and their base chains by hook."""

    file: str
    tables: dict[str, dict[str, CChain]] = field(default_factory=dict)
    families: dict[str, int] = field(default_factory=dict)  # table id -> 4, 6 or 0 (inet)
    hooks: dict[str, list[CChain]] = field(default_factory=dict)

    def chain(self, table: str, name: str) -> CChain | None:
        return self.tables.get(table, {}).get(name)

    def base_chains(self, hook: str, family: int = 4) -> list[CChain]:
        """The base chains at `hook` that see packets of `family`, by priority (table order on ties)."""
        return [c for c in self.hooks.get(hook, []) if c.family in (0, family)]


class _Unknown(Exception):
    pass


def compile_nft(rs: NftRuleset, *, unknown: str = "error") -> NftEngine:
    engine = NftEngine(rs.file)
    for table in rs.tables.values():
        family = FAMILY_NUMBERS.get(table.family)
        if family is None:
            continue  # arp, bridge, netdev: not on the IP hooks kplab walks
        _Table(engine, table, family, unknown, rs.json).compile()
    for hook in HOOKS:
        found = [c for chains in engine.tables.values() for c in chains.values() if c.hook == hook]
        engine.hooks[hook] = sorted(found, key=lambda c: c.priority)
    return engine


class _Table:
    def __init__(self, engine: NftEngine, table: Table, family: int, unknown: str, json: bool) -> None:
        self.engine, self.table, self.family, self.unknown = engine, table, family, unknown
        self.json = json
        self.id = table.id
        self.chains: dict[str, CChain] = {}
        self.sets: dict[str, CSet] = {}

    def compile(self) -> None:
        for chain in self.table.chains.values():
            cchain = self.chains[chain.name] = CChain(self.id, chain.name)
            cchain.family = self.family
            if chain.hook is not None:
                if chain.hook not in HOOKS:
                    continue
                cchain.type, cchain.hook, cchain.priority = chain.type, chain.hook, chain.priority
                cchain.policy = DROP if chain.policy == "drop" else ACCEPT
        for nset in self.table.sets.values():
            self.sets[nset.name] = self._named_set(nset)
        for chain in self.table.chains.values():
            cchain = self.chains[chain.name]
            cchain.rules = [self._rule(i, rule) for i, rule in enumerate(chain.rules, 1)]
        self._check_loops()
        self.engine.tables[self.id] = self.chains
        self.engine.families[self.id] = self.family

    def _error(self, rule: Rule | Elem | NSet, message: str) -> InputError:
        source = rule.source if not isinstance(rule, Elem) else None
        if source is None:
            return InputError(f"{self.engine.file}: {message}")
        if self.json:
            return InputError(f"{source.file}: nftables[{source.line - 1}]: {message}")
        return InputError(f"{source}: {message}")

    # -- sets ---------------------------------------------------------------------------------------

    def _named_set(self, nset: NSet) -> CSet:
        dynamic = "dynamic" in nset.flags or ("timeout" in nset.flags and not nset.elements)
        timeout = (nset.timeout_s or 0) * 1_000_000_000
        cset = CSet(f"{self.id} {nset.name}", dynamic and nset.data_type is None, timeout)
        for elem in nset.elements:
            data: object = True
            if isinstance(elem.data, VerdictStmt):
                data = self._verdict_op(elem.data, nset)
            elif elem.data is not None:
                data = elem.data
            _add(cset, elem.key, data)
        return cset

    def _set(self, name: str, rule: Rule, arity: int, vmap: bool) -> CSet:
        nset = self.table.sets.get(name)
        if nset is None:
            raise self._error(rule, f"no set or map '{name}' in table {self.id}")
        if len(nset.key_types) != arity:
            raise self._error(rule, f"@{name} has {len(nset.key_types)}-part keys, the rule gives {arity}")
        if vmap and nset.data_type != "verdict":
            raise self._error(rule, f"@{name} is not a verdict map")
        return self.sets[name]

    # -- rules --------------------------------------------------------------------------------------

    def _rule(self, number: int, rule: Rule) -> CRule:
        ops: list[Op] = []
        for stmt in rule.stmts:
            try:
                op = self._stmt(stmt, rule)
            except _Unknown as exc:
                if self.unknown == "error":
                    raise self._error(rule, f"kplab does not evaluate '{exc}'") from None
                op = NeverOp() if self.unknown == "never-match" else NopOp()
            if op is not None:
                ops.append(op)
        return CRule(number, tuple(ops), rule.text, rule.source.file, rule.source.line)

    def _stmt(self, stmt: Stmt, rule: Rule) -> Op | None:
        if isinstance(stmt, Match):
            return self._match(stmt, rule)
        if isinstance(stmt, VerdictStmt):
            return self._verdict_op(stmt, rule)
        if isinstance(stmt, VMap):
            load = self._load(stmt.key, rule)
            arity = len(expr_type(stmt.key))
            if isinstance(stmt.data, SetRef):
                return VMapOp(load, self._set(stmt.data.name, rule, arity, vmap=True))
            return VMapOp(load, self._anon_map(stmt.data, rule))
        if isinstance(stmt, NatStmt):
            return NatOp(_nat(stmt))
        if isinstance(stmt, Reject):
            kind = "tcp-reset" if stmt.type == "tcp reset" else _REJECT_KINDS.get(stmt.code)
            if kind is None:
                raise _Unknown(f"reject with {stmt.type} {stmt.code}")
            return RejectOp(kind)
        if isinstance(stmt, Counter | Log):
            return None
        if isinstance(stmt, SetStmt):
            if stmt.key.key == "nftrace":
                return None
            if stmt.key.key != "mark":
                raise _Unknown(f"{stmt.key.key} set")
            return SetMarkOp(self._load(stmt.value, rule), isinstance(stmt.key, Ct))
        if isinstance(stmt, SetUpdate):
            cset = self._set(stmt.set, rule, len(expr_type(stmt.key)), vmap=False)
            if not cset.dynamic:
                raise self._error(rule, f"@{stmt.set} is not a dynamic set")
            timeout = stmt.timeout_s * 1_000_000_000 if stmt.timeout_s is not None else cset.timeout_ns
            return UpdateSetOp(self._load(stmt.key, rule), cset, timeout, stmt.op == "update")
        if isinstance(stmt, Notrack):
            return NotrackOp()
        raise _Unknown(stmt.text)

    def _verdict_op(self, stmt: VerdictStmt, where: Rule | NSet) -> VerdictOp:
        if stmt.kind in ("jump", "goto"):
            target = self.chains.get(stmt.target or "")
            if target is None:
                raise self._error(where, f"{stmt.kind} to unknown chain '{stmt.target}'")
            if target.hook is not None:
                raise self._error(where, f"{stmt.kind} to base chain '{stmt.target}'")
            return VerdictOp(JUMP if stmt.kind == "jump" else GOTO, target)
        return VerdictOp(_VERDICT_CODES[stmt.kind])

    def _anon_map(self, data: AnonMap, rule: Rule) -> CSet:
        cset = CSet("", False, 0)
        for key, verdict in data.entries:
            _add(cset, key, self._verdict_op(verdict, rule))
        return cset

    def _match(self, m: Match, rule: Rule) -> Op:
        load = self._load(m.left, rule)
        types = expr_type(m.left)
        negate = m.op == "!="
        right = m.right
        if isinstance(right, SetRef):
            return MatchSet(load, self._set(right.name, rule, len(types), vmap=False), negate)
        if isinstance(right, AnonSet):
            cset = CSet("", False, 0)
            for key in right.keys:
                _add(cset, key, True)
            return MatchSet(load, cset, negate)
        if len(right) != len(types):
            raise self._error(rule, f"a {len(types)}-part value was expected, got {len(right)}")
        if any(isinstance(p, Interval) for p in right):
            cset = CSet("", False, 0)
            _add(cset, right, True)
            return MatchSet(load, cset, negate)
        value = right[0] if len(right) == 1 else tuple(right)
        if m.op == "in" or (types[0] in FLAG_TYPES and m.op == "==" and isinstance(m.left, Ct)):
            assert isinstance(value, int)
            return MatchFlags(load, value)
        if m.op in ("<", ">", "<=", ">="):
            if not isinstance(value, int):
                raise self._error(rule, f"'{m.op}' needs a number")
            return MatchCmp(load, m.op, value)
        if isinstance(value, str) and value.endswith("*") and types[0] == "ifname":
            return MatchWildcard(load, value[:-1], negate)
        return MatchEq(load, value, negate)

    def _load(self, expr: Expr, rule: Rule) -> Load:
        if isinstance(expr, Payload):
            if expr.base in ("ip", "ip6"):
                fam = 4 if expr.base == "ip" else 6
                if expr.field == "saddr":
                    return LoadSaddr(fam)
                if expr.field == "daddr":
                    return LoadDaddr(fam)
                return LoadL4proto()
            proto = 0 if expr.base == "th" else PROTOCOLS.get(expr.base, -1)
            return LoadPort(proto, expr.field == "dport")
        if isinstance(expr, Meta):
            key = expr.key
            if key == "l4proto":
                return LoadL4proto()
            if key == "mark":
                return LoadMark()
            if key in ("iifname", "oifname"):
                return LoadIfname(key == "oifname")
            if key == "nfproto":
                return LoadNfproto()
            raise _Unknown(f"meta {key}")
        if isinstance(expr, Ct):
            loads = {
                "state": LoadCtState,
                "status": LoadCtStatus,
                "mark": LoadCtMark,
                "direction": LoadCtDirection,
            }
            return loads[expr.key]()
        if isinstance(expr, Fib):
            if expr.result != "type" or not set(expr.flags) & {"saddr", "daddr"}:
                raise _Unknown(f"fib {' . '.join(expr.flags)} {expr.result}")
            return LoadFibType("saddr" in expr.flags)
        if isinstance(expr, Numgen):
            if expr.mode != "random":
                raise _Unknown(f"numgen {expr.mode}")
            return LoadNumgen(expr.mod, expr.offset)
        if isinstance(expr, Concat):
            return LoadConcat(tuple(self._load(p, rule) for p in expr.parts))
        if isinstance(expr, Binop):
            return LoadBinop(expr.op, self._load(expr.left, rule), expr.right)
        assert isinstance(expr, Const)
        return LoadConst(expr.value)

    def _check_loops(self) -> None:
        """The kernel refuses a chain that can reach itself (ELOOP)."""
        done: set[str] = set()

        def targets(chain: CChain) -> list[tuple[CChain, CRule]]:
            out = []
            for crule in chain.rules:
                for op in crule.ops:
                    if isinstance(op, VerdictOp) and op.chain is not None:
                        out.append((op.chain, crule))
                    elif isinstance(op, VMapOp):
                        values = [*op.cset.exact.values(), *(d for _, d in op.cset.ranges)]
                        out += [(v.chain, crule) for v in values if isinstance(v, VerdictOp) and v.chain]
            return out

        def visit(chain: CChain, path: tuple[str, ...]) -> None:
            if chain.name in done:
                return
            for target, crule in targets(chain):
                if target.name in path:
                    where = f"{crule.source_file}:{crule.source_line}"
                    if self.json:
                        where = f"{crule.source_file}: nftables[{crule.source_line - 1}]"
                    raise InputError(f"{where}: loop: chain '{target.name}' reaches itself")
                visit(target, (*path, target.name))
            done.add(chain.name)

        for chain in self.chains.values():
            visit(chain, (chain.name,))


def _add(cset: CSet, key: Key, data: object) -> None:
    if any(isinstance(p, Interval) for p in key):
        bounds = tuple((p.lo, p.hi) if isinstance(p, Interval) else p for p in key)
        cset.ranges.append((bounds, data))
    else:
        cset.exact[key[0] if len(key) == 1 else tuple(key)] = data


def _nat(stmt: NatStmt) -> Nat:
    return Nat(
        stmt.kind.upper(),
        stmt.addr,
        stmt.addr_hi,
        stmt.port,
        stmt.port_hi,
        random="random" in stmt.flags,
        random_fully="fully-random" in stmt.flags,
        persistent="persistent" in stmt.flags,
    )
