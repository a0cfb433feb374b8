"""`nft -j list ruleset` into an `NftRuleset` (the same model as the text parser's).

Errors name the place in the document: `file: nftables[12].rule.expr[0].match.right: ...`. A rule's
`Source` line is its index in the `nftables` array plus one. Traps of nft 1.0.6's JSON (table and
chain comments missing, `dynamic` missing from set flags) do not matter to evaluation.
"""

from __future__ import annotations

import json
from typing import Any

from kplab.errors import InputError
from kplab.netfilter.model import Source
from kplab.netfilter.nft.model import (
    AnonMap,
    AnonSet,
    Binop,
    Chain,
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
    Part,
    Payload,
    Reject,
    Rhs,
    Rule,
    SetRef,
    SetStmt,
    SetUpdate,
    Stmt,
    Table,
    Unknown,
    VerdictStmt,
    VMap,
)
from kplab.netfilter.nft.render import render_rule
from kplab.netfilter.nft.values import FLAG_TYPES, expr_type, parse_value
from kplab.untrusted import load_json

_VERDICTS = ("accept", "drop", "continue", "return", "queue", "jump", "goto")
_BINOPS = ("&", "|", "^", "<<", ">>")


class _Unsupported(Exception):
    pass


class _Bad(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def parse_json(text: str, file: str) -> NftRuleset:
    doc = load_json(text, file)
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError(f'{file}: nftables: expected {{"nftables": [...]}} as `nft -j list ruleset` prints')
    rs = NftRuleset(file, json=True)
    try:
        for index, item in enumerate(items):
            _item(rs, item, f"nftables[{index}]", Source(file, index + 1))
    except _Bad as bad:
        raise InputError(f"{file}: {bad.path}: {bad.message}") from None
    return rs


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(path, f"expected an object, got {json.dumps(value)[:60]}")
    return value


def _str(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _Bad(f"{path}.{key}", "expected a string")
    return value


def _int(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Bad(path, f"expected an integer, got {json.dumps(value)[:60]}")
    return value


def _item(rs: NftRuleset, item: Any, path: str, source: Source) -> None:
    obj = _obj(item, path)
    if len(obj) != 1:
        raise _Bad(path, "expected one key (table, chain, set, map, rule, ...)")
    kind, body = next(iter(obj.items()))
    where = f"{path}.{kind}"
    if kind in ("metainfo", "counter", "quota", "ct helper", "limit", "flowtable", "element"):
        return
    body = _obj(body, where)
    family = _str(body, "family", where)
    if kind == "table":
        name = _str(body, "name", where)
        rs.tables[(family, name)] = Table(family, name, source, body.get("comment"))
        return
    tname = _str(body, "table", where)
    table = rs.table(family, tname)
    if table is None:
        raise _Bad(f"{where}.table", f"no table '{family} {tname}' declared before")
    if kind == "chain":
        _chain(table, body, where, source)
    elif kind in ("set", "map"):
        _set(table, body, kind, where, source)
    elif kind == "rule":
        name = _str(body, "chain", where)
        chain = table.chains.get(name)
        if chain is None:
            raise _Bad(f"{where}.chain", f"no chain '{name}' declared before")
        exprs = body.get("expr")
        if not isinstance(exprs, list):
            raise _Bad(f"{where}.expr", "expected a list")
        stmts = [_stmt(e, f"{where}.expr[{i}]", family) for i, e in enumerate(exprs)]
        comment = body.get("comment")
        chain.rules.append(Rule(stmts, source, render_rule(stmts, comment), comment))
    else:
        raise _Bad(path, f"unknown object '{kind}'")


def _chain(table: Table, body: dict[str, Any], where: str, source: Source) -> None:
    chain = Chain(_str(body, "name", where), source)
    if "hook" in body:
        chain.hook = _str(body, "hook", where)
        chain.type = _str(body, "type", where) if "type" in body else "filter"
        chain.priority = _int(body.get("prio"), f"{where}.prio")
        chain.policy = body.get("policy", "accept")
        if chain.policy not in ("accept", "drop"):
            raise _Bad(f"{where}.policy", f"bad policy {chain.policy!r}")
    table.chains[chain.name] = chain


def _set(table: Table, body: dict[str, Any], kind: str, where: str, source: Source) -> None:
    types = body.get("type")
    if isinstance(types, str):
        key_types: tuple[str, ...] = (types,)
    elif isinstance(types, list) and types and all(isinstance(t, str) for t in types):
        key_types = tuple(types)
    else:
        raise _Bad(f"{where}.type", "expected a type name or a list of them")
    nset = NSet(_str(body, "name", where), source, key_types, comment=body.get("comment"))
    if kind == "map":
        nset.data_type = _str(body, "map", where)
    flags = body.get("flags", [])
    nset.flags = (flags,) if isinstance(flags, str) else tuple(flags)
    if "timeout" in body:
        nset.timeout_s = _int(body["timeout"], f"{where}.timeout")
    for i, elem in enumerate(body.get("elem", [])):
        nset.elements.append(_elem(elem, nset, f"{where}.elem[{i}]", table.family))
    table.sets[nset.name] = nset


def _elem(value: Any, nset: NSet, path: str, family: str) -> Elem:
    data: VerdictStmt | Part | None = None
    if nset.data_type is not None:
        if not isinstance(value, list) or len(value) != 2:
            raise _Bad(path, "expected [key, value]")
        value, raw = value
        if nset.data_type == "verdict":
            data = _verdict(raw, f"{path}[1]")
        else:
            data = _value(nset.data_type, raw, f"{path}[1]")
    comment = None
    if isinstance(value, dict) and "elem" in value:
        inner = _obj(value["elem"], f"{path}.elem")
        comment = inner.get("comment")
        value = inner.get("val")
    key = _key(nset.key_types, value, path)
    if isinstance(data, Interval):
        raise _Bad(path, "a map value cannot be a range")
    return Elem(key, data, comment)


def _key(types: tuple[str, ...], value: Any, path: str) -> Key:
    if isinstance(value, dict) and "elem" in value:
        value = _obj(value["elem"], f"{path}.elem").get("val")
    if len(types) > 1:
        parts = value.get("concat") if isinstance(value, dict) else None
        if not isinstance(parts, list) or len(parts) != len(types):
            raise _Bad(path, f"expected a concatenation of {len(types)} values")
        return tuple(
            _value(t, p, f"{path}.concat[{i}]") for i, (t, p) in enumerate(zip(types, parts, strict=True))
        )
    return (_value(types[0], value, path),)


def _value(type_: str, value: Any, path: str) -> Part:
    try:
        if isinstance(value, dict) and "prefix" in value:
            prefix = _obj(value["prefix"], f"{path}.prefix")
            return parse_value(type_, f"{prefix.get('addr')}/{prefix.get('len')}")
        if isinstance(value, dict) and "range" in value:
            lo, hi = value["range"]
            a, b = parse_value(type_, str(lo)), parse_value(type_, str(hi))
            if not isinstance(a, int) or not isinstance(b, int):
                raise ValueError("bad range")
            return Interval(a, b)
        if isinstance(value, list) and type_ in FLAG_TYPES:
            return parse_value(type_, ",".join(str(v) for v in value))
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"expected a {type_} value, got {json.dumps(value)[:60]}")
        return parse_value(type_, str(value))
    except (ValueError, TypeError) as exc:
        raise _Bad(path, str(exc)) from None


def _verdict(value: Any, path: str) -> VerdictStmt:
    obj = _obj(value, path)
    if len(obj) != 1 or next(iter(obj)) not in _VERDICTS:
        raise _Bad(path, "expected a verdict")
    kind, body = next(iter(obj.items()))
    if kind in ("jump", "goto"):
        return VerdictStmt(kind, _str(_obj(body, f"{path}.{kind}"), "target", f"{path}.{kind}"))
    return VerdictStmt(kind)


def _expr(value: Any, path: str) -> Expr:
    obj = _obj(value, path)
    if len(obj) != 1:
        raise _Bad(path, "expected one expression")
    kind, body = next(iter(obj.items()))
    where = f"{path}.{kind}"
    if kind == "payload":
        body = _obj(body, where)
        return Payload(_str(body, "protocol", where), _str(body, "field", where))
    if kind == "meta":
        return Meta(_str(_obj(body, where), "key", where))
    if kind == "ct":
        body = _obj(body, where)
        if "dir" in body:
            raise _Unsupported("ct with a direction")
        return Ct(_str(body, "key", where))
    if kind == "fib":
        body = _obj(body, where)
        flags = body.get("flags", [])
        return Fib((flags,) if isinstance(flags, str) else tuple(flags), _str(body, "result", where))
    if kind == "numgen":
        body = _obj(body, where)
        return Numgen(
            _str(body, "mode", where),
            _int(body.get("mod"), f"{where}.mod"),
            _int(body.get("offset", 0), f"{where}.offset"),
        )
    if kind == "concat":
        if not isinstance(body, list):
            raise _Bad(where, "expected a list")
        return Concat(tuple(_expr(p, f"{where}[{i}]") for i, p in enumerate(body)))
    if kind in _BINOPS:
        if not isinstance(body, list) or len(body) != 2:
            raise _Bad(where, "expected [left, right]")
        return Binop(kind, _expr(body[0], f"{where}[0]"), _int(body[1], f"{where}[1]"))
    raise _Unsupported(kind)


def _rhs(types: tuple[str, ...], value: Any, path: str) -> Rhs:
    if isinstance(value, str) and value.startswith("@"):
        return SetRef(value[1:])
    if isinstance(value, dict) and "set" in value:
        elems = value["set"]
        if not isinstance(elems, list):
            raise _Bad(f"{path}.set", "expected a list")
        keys = tuple(_key(types, e, f"{path}.set[{i}]") for i, e in enumerate(elems))
        return keys[0] if len(keys) == 1 else AnonSet(keys)
    return _key(types, value, path)


def _stmt(value: Any, path: str, family: str) -> Stmt:
    try:
        return _statement(value, path, family)
    except _Unsupported:
        return Unknown(json.dumps(value, separators=(",", ":"))[:120])


def _statement(value: Any, path: str, family: str) -> Stmt:
    obj = _obj(value, path)
    if len(obj) != 1:
        raise _Bad(path, "expected one statement")
    kind, body = next(iter(obj.items()))
    where = f"{path}.{kind}"
    if kind in _VERDICTS:
        return _verdict(obj, path)
    if kind == "match":
        body = _obj(body, where)
        left = _expr(body.get("left"), f"{where}.left")
        op = body.get("op", "==")
        if op not in ("==", "!=", "<", ">", "<=", ">=", "in"):
            raise _Bad(f"{where}.op", f"unsupported operator {op!r}")
        return Match(left, op, _rhs(expr_type(left), body.get("right"), f"{where}.right"))
    if kind == "counter":
        return Counter()
    if kind == "vmap":
        body = _obj(body, where)
        key = _expr(body.get("key"), f"{where}.key")
        data = body.get("data")
        if isinstance(data, str) and data.startswith("@"):
            return VMap(key, SetRef(data[1:]))
        entries = _obj(data, f"{where}.data").get("set")
        if not isinstance(entries, list):
            raise _Bad(f"{where}.data", 'expected @map or {"set": [...]}')
        types = expr_type(key)
        out = []
        for i, entry in enumerate(entries):
            epath = f"{where}.data.set[{i}]"
            if not isinstance(entry, list) or len(entry) != 2:
                raise _Bad(epath, "expected [key, verdict]")
            out.append((_key(types, entry[0], f"{epath}[0]"), _verdict(entry[1], f"{epath}[1]")))
        return VMap(key, AnonMap(tuple(out)))
    if kind in ("dnat", "snat", "masquerade", "redirect"):
        return _nat(kind, body, where, family)
    if kind == "reject":
        if body is None:
            return Reject()
        body = _obj(body, where)
        rtype = body.get("type", "icmp")
        return Reject(
            "tcp reset" if rtype == "tcp reset" else rtype, str(body.get("expr", "port-unreachable"))
        )
    if kind == "mangle":
        body = _obj(body, where)
        key = _expr(body.get("key"), f"{where}.key")
        if not isinstance(key, Meta | Ct):
            raise _Bad(f"{where}.key", "only meta and ct keys can be set")
        raw = body.get("value")
        if isinstance(raw, dict):
            return SetStmt(key, _expr(raw, f"{where}.value"))
        const = _value(expr_type(key)[0], raw, f"{where}.value")
        if isinstance(const, Interval):
            raise _Bad(f"{where}.value", "cannot set a range")
        return SetStmt(key, Const(const))
    if kind == "set":
        body = _obj(body, where)
        op = _str(body, "op", where)
        name = _str(body, "set", where)
        return SetUpdate(op, name.lstrip("@"), _expr(body.get("elem"), f"{where}.elem"), body.get("timeout"))
    if kind == "log":
        return Log(str((body or {}).get("prefix", "")))
    if kind == "notrack":
        return Notrack()
    return Unknown(json.dumps(obj, separators=(",", ":"))[:120])


def _nat(kind: str, body: Any, where: str, family: str) -> NatStmt:
    if body is None:
        return NatStmt(kind)
    body = _obj(body, where)
    fam = body.get("family", family)
    type_ = "ipv6_addr" if fam == "ip6" else "ipv4_addr"
    addr = addr_hi = port = port_hi = None
    if "addr" in body:
        addr, addr_hi = _bounds(_value(type_, body["addr"], f"{where}.addr"), f"{where}.addr")
    if "port" in body:
        port, port_hi = _bounds(_value("inet_service", body["port"], f"{where}.port"), f"{where}.port")
    flags = body.get("flags", [])
    return NatStmt(kind, addr, addr_hi, port, port_hi, (flags,) if isinstance(flags, str) else tuple(flags))


def _bounds(value: Part, path: str) -> tuple[int, int]:
    if isinstance(value, Interval):
        return value.lo, value.hi
    if not isinstance(value, int):
        raise _Bad(path, "expected an address or a port")
    return value, value
