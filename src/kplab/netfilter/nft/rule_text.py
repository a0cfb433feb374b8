"""One rule of nft's text syntax (the words after `add rule FAMILY TABLE CHAIN`, or one line of a
chain block) into statements; set elements and typed values, shared with `text`."""

from __future__ import annotations

from kplab.netfilter.nft.lexer import PUNCT, STRING, Cursor, Tok
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
    Notrack,
    Numgen,
    Part,
    Payload,
    Reject,
    Rhs,
    SetRef,
    SetStmt,
    SetUpdate,
    Stmt,
    Unknown,
    VerdictStmt,
    VMap,
)
from kplab.netfilter.nft.values import (
    FLAG_TYPES,
    PORT_BASES,
    expr_type,
    parse_duration,
    parse_int,
    parse_value,
)

VERDICTS = frozenset({"accept", "drop", "continue", "return", "queue"})
_OPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "eq": "==", "ne": "!="}
_OPS.update({"lt": "<", "gt": ">", "le": "<=", "ge": ">="})
_BINOPS = {"&": "&", "and": "&", "|": "|", "or": "|", "^": "^", "xor": "^", "<<": "<<", ">>": ">>"}
_META_KEYS = frozenset({"l4proto", "mark", "iifname", "oifname", "iif", "oif", "nfproto", "protocol"})
_BARE_META = frozenset({"mark", "iifname", "oifname", "iif", "oif", "l4proto"})
_FIELDS = {
    "ip": frozenset({"saddr", "daddr", "protocol"}),
    "ip6": frozenset({"saddr", "daddr", "nexthdr"}),
}
_EXPR_START = frozenset({"ip", "ip6", "meta", "ct", "fib", "numgen", *PORT_BASES, *_BARE_META})
_LOG_OPTIONS = frozenset({"prefix", "level", "group", "snaplen", "queue-threshold", "flags"})
_NAT_FLAGS = frozenset({"random", "fully-random", "persistent"})


class Unsupported(Exception):
    """An expression kplab does not model: the statement it starts is kept as `Unknown`."""


class RuleParser:
    """Parses statements for one table (`family` says how to read a `dnat to` address)."""

    def __init__(self, cur: Cursor, family: str) -> None:
        self.cur, self.family = cur, family
        self.comment: str | None = None

    # -- expressions --------------------------------------------------------------------------------

    def starts_expr(self) -> bool:
        return self.cur.peek_text() in _EXPR_START

    def expr(self) -> Expr:
        first = self.primary()
        parts = [first]
        while self.cur.peek_text() == "." and self.cur.peek_text(1) in _EXPR_START:
            self.cur.next()
            parts.append(self.primary())
        return first if len(parts) == 1 else Concat(tuple(parts))

    def primary(self) -> Expr:
        cur = self.cur
        word = cur.word("an expression")
        expr: Expr
        if word in _FIELDS:
            field = cur.word(f"a field of {word}")
            if field not in _FIELDS[word]:
                raise Unsupported(f"{word} {field}")
            expr = Payload(word, field)
        elif word in PORT_BASES:
            field = cur.word(f"a field of {word}")
            if field not in ("sport", "dport"):
                raise Unsupported(f"{word} {field}")
            expr = Payload(word, field)
        elif word == "meta":
            key = cur.word("a meta key")
            if key not in _META_KEYS:
                raise Unsupported(f"meta {key}")
            expr = Meta(key)
        elif word in _BARE_META:
            expr = Meta(word)
        elif word == "ct":
            key = cur.word("a ct key")
            if key not in ("state", "status", "mark", "direction"):
                raise Unsupported(f"ct {key}")
            expr = Ct(key)
        elif word == "fib":
            flags = [cur.word("fib flags")]
            while cur.accept("."):
                flags.append(cur.word("fib flags"))
            result = cur.word("fib result")
            if result not in ("type", "oif", "oifname"):
                raise Unsupported(f"fib {result}")
            expr = Fib(tuple(flags), result)
        else:  # numgen
            mode = cur.word("numgen mode")
            cur.expect("mod")
            mod = self.number()
            offset = 0
            if cur.accept("offset"):
                offset = self.number()
            if mod <= 0:
                raise cur.error("numgen: mod must be positive")
            expr = Numgen(mode, mod, offset)
        op = cur.peek_text()
        if op in _BINOPS and cur.peek_text(1) is not None and cur.peek_text(1) not in _EXPR_START:
            cur.next()
            expr = Binop(_BINOPS[op], expr, self.number())
        return expr

    def number(self) -> int:
        text = self.cur.word("a number")
        try:
            return parse_int(text)
        except ValueError as exc:
            raise self.cur.error(str(exc)) from None

    # -- values -------------------------------------------------------------------------------------

    def value(self, type_: str) -> Part:
        tok = self.cur.next(f"a {type_} value")
        text = tok.text
        if type_ in FLAG_TYPES:
            while self.cur.peek_text() == "," and self.cur.peek_text(1) is not None:
                self.cur.next()
                text += "," + self.cur.word()
        try:
            return parse_value(type_, text)
        except ValueError as exc:
            raise self.cur.error(str(exc)) from None

    def key(self, types: tuple[str, ...]) -> Key:
        parts = [self.value(types[0])]
        for type_ in types[1:]:
            self.cur.expect(".")
            parts.append(self.value(type_))
        return tuple(parts)

    def elements(self, types: tuple[str, ...], data_type: str | None) -> list[Elem]:
        """The inside of `{ k [comment "c"] [: v], ... }` (the cursor is on `{`)."""
        inner = Cursor(self.cur.group(), self.cur.file, self.cur.line)
        sub = RuleParser(inner, self.family)
        out: list[Elem] = []
        while not inner.at_end():
            key = sub.key(types)
            comment = None
            while inner.peek_text() in ("comment", "timeout", "expires", "counter"):
                what = inner.word()
                if what == "comment":
                    comment = inner.string("a comment")
                elif what == "counter":
                    inner.expect("packets")
                    inner.word()
                    inner.expect("bytes")
                    inner.word()
                else:
                    inner.word()
            data: VerdictStmt | int | str | None = None
            if data_type is not None:
                inner.expect(":")
                value = sub.verdict() if data_type == "verdict" else sub.value(data_type)
                if isinstance(value, Interval):
                    raise inner.error("a map value cannot be a range")
                data = value
            out.append(Elem(key, data, comment))
            if not inner.accept(","):
                break
        if not inner.at_end():
            raise inner.error(f"unexpected {inner.next().render()!r} in a set")
        return out

    def rhs(self, types: tuple[str, ...]) -> Rhs:
        text = self.cur.peek_text()
        if text is not None and text.startswith("@"):
            self.cur.next()
            return SetRef(text[1:])
        if text == "{":
            keys = tuple(e.key for e in self.elements(types, None))
            return keys[0] if len(keys) == 1 else AnonSet(keys)  # as nft stores a one-element set
        return self.key(types)

    def verdict(self) -> VerdictStmt:
        word = self.cur.word("a verdict")
        if word in ("jump", "goto"):
            return VerdictStmt(word, self.cur.string("a chain name"))
        if word in VERDICTS:
            return VerdictStmt(word)
        raise self.cur.error(f"not a verdict: '{word}'")

    # -- statements ---------------------------------------------------------------------------------

    def statements(self) -> list[Stmt]:
        out: list[Stmt] = []
        while not self.cur.at_end():
            stmt = self.statement()
            if stmt is not None:
                out.append(stmt)
        return out

    def statement(self) -> Stmt | None:
        cur = self.cur
        if self.starts_expr():
            start = cur.pos
            try:
                return self.expr_statement()
            except Unsupported:
                cur.pos = start
                return self.unknown(cur.word(), cur.word())
        word = cur.word("a statement")
        if word == "comment":
            self.comment = cur.string("a comment")
            return None
        if word == "counter":
            if cur.accept("packets"):
                self.number()
                cur.expect("bytes")
                self.number()
            return Counter()
        if word in VERDICTS:
            return VerdictStmt(word)
        if word in ("jump", "goto"):
            return VerdictStmt(word, cur.string("a chain name"))
        if word == "reject":
            return self.reject()
        if word in ("dnat", "snat", "masquerade", "redirect"):
            return self.nat(word)
        if word == "log":
            prefix = ""
            while cur.peek_text() in _LOG_OPTIONS:
                if cur.word() == "prefix":
                    prefix = cur.string("a log prefix")
                else:
                    cur.next()
            return Log(prefix)
        if word == "notrack":
            return Notrack()
        if word in ("update", "add") and (cur.peek_text() or "").startswith("@"):
            name = cur.word()[1:]
            inner = Cursor(cur.group(), cur.file, cur.line)
            sub = RuleParser(inner, self.family)
            key = sub.expr()
            timeout = None
            if inner.accept("timeout"):
                try:
                    timeout = parse_duration(inner.word("a timeout"))
                except ValueError as exc:
                    raise inner.error(str(exc)) from None
            return SetUpdate(word, name, key, timeout)
        return self.unknown(word)

    def unknown(self, *first: str) -> Unknown:
        """A statement kplab does not know: its words up to the next statement it does know."""
        words = list(first)
        while not self.cur.at_end() and not self.starts_expr():
            nxt = self.cur.peek_text()
            if nxt in VERDICTS or nxt in ("jump", "goto", "counter", "comment"):
                break
            tok = self.cur.peek()
            if tok is not None and tok.kind == PUNCT and tok.text == "{":
                words.append("{ " + " ".join(t.render() for t in self.cur.group()) + " }")
            else:
                words.append(self.cur.next().render())
        return Unknown(" ".join(words))

    def expr_statement(self) -> Stmt:
        cur = self.cur
        left = self.expr()
        if cur.accept("set"):
            if not isinstance(left, Meta | Ct):
                raise cur.error("only meta and ct keys can be set")
            if self.starts_expr():
                return SetStmt(left, self.expr())
            value = self.value(expr_type(left)[0])
            if not isinstance(value, int | str):
                raise cur.error("cannot set a range")
            return SetStmt(left, Const(value))
        if cur.accept("vmap"):
            text = cur.peek_text()
            if text is not None and text.startswith("@"):
                cur.next()
                return VMap(left, SetRef(text[1:]))
            elems = self.elements(expr_type(left), "verdict")
            return VMap(left, AnonMap(tuple((e.key, e.data) for e in elems)))  # type: ignore[misc]
        op = "implicit"
        text = cur.peek_text()
        if text in _OPS:
            cur.next()
            op = _OPS[text]
        types = expr_type(left)
        right = self.rhs(types)
        if op == "implicit":
            op = "in" if types[0] in FLAG_TYPES and isinstance(right, tuple) else "=="
        return Match(left, op, right)

    def reject(self) -> Reject:
        cur = self.cur
        if not cur.accept("with"):
            return Reject()
        kind = cur.word("a reject type")
        if kind == "tcp":
            cur.expect("reset")
            return Reject("tcp reset", "")
        if kind not in ("icmp", "icmpx", "icmpv6"):
            raise cur.error(f"unknown reject type '{kind}'")
        cur.accept("type")
        return Reject(kind, cur.word("an icmp code"))

    def nat(self, kind: str) -> NatStmt:
        cur = self.cur
        family = self.family
        if cur.peek_text() in ("ip", "ip6"):
            family = cur.word()
        addr = addr_hi = port = port_hi = None
        if cur.accept("to"):
            target = cur.word("a NAT target")
            try:
                addr, addr_hi, port, port_hi = parse_nat_target(target, family)
            except ValueError as exc:
                raise cur.error(str(exc)) from None
        flags: list[str] = []
        while cur.peek_text() in _NAT_FLAGS:
            flags.append(cur.word())
            cur.accept(",")
        if kind in ("dnat", "snat") and addr is None:
            raise cur.error(f"{kind}: needs 'to ADDRESS'")
        return NatStmt(kind, addr, addr_hi, port, port_hi, tuple(flags))


def parse_nat_target(text: str, family: str) -> tuple[int | None, int | None, int | None, int | None]:
    """`10.0.0.1`, `10.0.0.1:80`, `10.0.0.1-10.0.0.9:80-90`, `[fd00::1]:80`, `fd00::1`, `:80`."""
    v6 = family == "ip6" or text.startswith("[") or text.count(":") > 1
    host, ports = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        ports = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad NAT target {text!r}")
    elif not v6 and ":" in text:
        host, _, ports = text.partition(":")
    addr = addr_hi = port = port_hi = None
    if host:
        lo_text, _, hi_text = host.partition("-")
        type_ = "ipv6_addr" if v6 else "ipv4_addr"
        lo = parse_value(type_, lo_text)
        hi = parse_value(type_, hi_text) if hi_text else lo
        if not isinstance(lo, int) or not isinstance(hi, int):
            raise ValueError(f"bad NAT address {host!r}")
        addr, addr_hi = lo, hi
    if ports:
        lo_text, _, hi_text = ports.partition("-")
        port = parse_int(lo_text)
        port_hi = parse_int(hi_text) if hi_text else port
        if not 0 <= port <= port_hi <= 65535:
            raise ValueError(f"bad port in {text!r}")
    return addr, addr_hi, port, port_hi


def render(toks: list[Tok]) -> str:
    out: list[str] = []
    for tok in toks:
        text = tok.render()
        if tok.kind == PUNCT and text in (",", ";") and out:
            out[-1] += text
        else:
            out.append(text)
    return " ".join(out)


def is_string(tok: Tok) -> bool:
    return tok.kind == STRING
