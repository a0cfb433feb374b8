"""nft's text syntax into an `NftRuleset`: what `nft list ruleset` prints (`table ... { chain ... }`
blocks) and what `nft -f` reads as commands (`add table|chain|set|map|rule|element ...`, `flush`,
`delete`, as kube-proxy/knftables write them). Both forms may be mixed in one file.

Names are resolved after the whole file is read (the kernel would refuse a forward reference in
one batch; a dump is not a batch), by the compiler. Errors: `file:line: what is wrong`.
"""

from __future__ import annotations

from collections.abc import Iterator

from kplab.errors import located
from kplab.netfilter.model import Source
from kplab.netfilter.nft.lexer import NEWLINE, PUNCT, Cursor, Tok, tokenize
from kplab.netfilter.nft.model import Chain, NftRuleset, NSet, Rule, Table
from kplab.netfilter.nft.rule_text import RuleParser, render
from kplab.netfilter.nft.values import expr_type, parse_duration, parse_priority

FAMILIES = frozenset({"ip", "ip6", "inet", "arp", "bridge", "netdev"})
_KINDS = frozenset({"table", "chain", "set", "map", "rule", "element"})
_CLOSE = Tok("}", 0, PUNCT)


def parse_text(text: str, file: str) -> NftRuleset:
    toks = tokenize(text, file)
    cur = Cursor(toks, file)
    rs = NftRuleset(file)
    while True:
        cur.skip_newlines()
        while cur.accept(";"):
            cur.skip_newlines()
        if cur.at_end():
            return rs
        _command(cur, rs)


def _command(cur: Cursor, rs: NftRuleset) -> None:
    line = cur.line
    word = cur.word("a command")
    if word == "table":
        _table_block(cur, rs, line)
        return
    if word in ("add", "create", "insert"):
        kind = cur.word("an object kind")
        if kind not in _KINDS:
            raise located(cur.file, line, f"cannot {word} '{kind}'")
        if kind != "rule" and word == "insert":
            raise located(cur.file, line, "only rules can be inserted")
        _add(cur, rs, kind, line, insert=word == "insert")
        return
    if word in ("flush", "delete", "destroy"):
        _remove(cur, rs, word, line)
        return
    raise located(cur.file, line, f"unknown command '{word}'")


def _family_table(cur: Cursor) -> tuple[str, str]:
    first = cur.string("a table")
    if first in FAMILIES and cur.peek() is not None and cur.peek_text() not in ("{", None, "\n"):
        return first, cur.string("a table name")
    return "ip", first


def _table(cur: Cursor, rs: NftRuleset, line: int, create: bool) -> Table:
    family, name = _family_table(cur)
    table = rs.table(family, name)
    if table is None:
        if not create:
            raise located(cur.file, line, f"no table '{family} {name}'")
        table = rs.tables[(family, name)] = Table(family, name, Source(cur.file, line))
    return table


def _table_block(cur: Cursor, rs: NftRuleset, line: int) -> None:
    table = _table(cur, rs, line, create=True)
    cur.expect("{")
    for at in _block_items(cur):
        word = cur.word("chain, set, map or '}'")
        if word == "chain":
            chain = _chain(cur, table, at)
            cur.expect("{")
            _chain_body(cur, table, chain)
        elif word in ("set", "map"):
            nset = _set(cur, table, word, at)
            cur.expect("{")
            _set_body(cur, table, nset)
        elif word == "comment":
            table.comment = cur.string("a comment")
        elif word == "flags":
            cur.statement()
        elif word in ("counter", "quota", "limit", "ct", "flowtable", "secmark", "synproxy"):
            _skip_block(cur)
        else:
            raise located(cur.file, at, f"unexpected '{word}' in table {table.id}")


def _skip_block(cur: Cursor) -> None:
    """A named object kplab does not evaluate (counter, quota, flowtable...): skipped whole."""
    while (tok := cur.peek()) is not None and not (tok.text == "{" and tok.kind == "p"):
        cur.next()
    cur.group()


def _chain(cur: Cursor, table: Table, line: int) -> Chain:
    name = cur.string("a chain name")
    chain = table.chains.get(name)
    if chain is None:
        chain = table.chains[name] = Chain(name, Source(cur.file, line))
    return chain


def _block_items(cur: Cursor) -> Iterator[int]:
    """The line of each item of a `{ ... }` block (the `{` already read) up to and including its `}`;
    newlines and `;` between items are skipped. The caller reads each item before the next is sought."""
    while True:
        cur.skip_newlines()
        if cur.accept(";"):
            continue
        if cur.accept("}"):
            return
        if cur.at_end():
            raise cur.error("expected '}', got the end of the file")
        yield cur.line


def _chain_body(cur: Cursor, table: Table, chain: Chain) -> None:
    for line in _block_items(cur):
        stmt = cur.statement()
        _chain_line(Cursor(stmt, cur.file, line), table, chain, line)


def _chain_line(sub: Cursor, table: Table, chain: Chain, line: int) -> None:
    first = sub.peek_text()
    if first == "type" and sub.peek_text(2) == "hook":
        sub.next()
        chain.type = sub.word("a chain type")
        sub.expect("hook")
        chain.hook = sub.word("a hook")
        if sub.accept("device"):
            sub.string("a device")
        sub.expect("priority")
        words = []
        while not sub.at_end() and sub.peek_text() != "policy":
            words.append(sub.next().text)
        try:
            chain.priority = parse_priority(" ".join(words))
        except ValueError as exc:
            raise located(sub.file, line, f"bad priority: {exc}") from None
        if sub.accept("policy"):
            chain.policy = _policy(sub)
    elif first == "policy" and sub.peek_text(2) is None:
        sub.next()
        chain.policy = _policy(sub)
    elif first == "comment" and len(sub.toks) == 2:
        sub.next()
        sub.string()
    elif first in ("devices", "flags") and chain.hook is not None:
        return
    else:
        chain.rules.append(_rule(sub, table, line))
    if not sub.at_end():
        raise sub.error(f"unexpected {sub.next().render()!r}")


def _policy(sub: Cursor) -> str:
    policy = sub.word("a policy")
    if policy not in ("accept", "drop"):
        raise sub.error(f"bad policy '{policy}'")
    return policy


def _rule(sub: Cursor, table: Table, line: int) -> Rule:
    parser = RuleParser(sub, table.family)
    stmts = parser.statements()
    return Rule(stmts, Source(sub.file, line), render(sub.toks), parser.comment)


def _set(cur: Cursor, table: Table, kind: str, line: int) -> NSet:
    name = cur.string("a set name")
    nset = table.sets.get(name)
    if nset is None:
        nset = table.sets[name] = NSet(name, Source(cur.file, line), ())
        nset.data_type = "" if kind == "map" else None
    return nset


def _set_body(cur: Cursor, table: Table, nset: NSet) -> None:
    """`type ...; flags ...; timeout ...; comment ...; elements = { ... }` up to the closing `}`."""
    for line in _block_items(cur):
        word = cur.word("a set property")
        if word in ("type", "typeof"):
            _set_type(cur, table, nset, word, line)
        elif word == "flags":
            flags = [cur.word("a flag")]
            while cur.accept(","):
                flags.append(cur.word("a flag"))
            nset.flags = tuple(flags)
        elif word == "timeout":
            try:
                nset.timeout_s = parse_duration(cur.word("a timeout"))
            except ValueError as exc:
                raise located(cur.file, line, str(exc)) from None
        elif word == "comment":
            nset.comment = cur.string("a comment")
        elif word == "elements":
            cur.expect("=")
            _check_typed(cur, nset, line)
            parser = RuleParser(cur, table.family)
            nset.elements.extend(parser.elements(nset.key_types, nset.data_type))
        elif word in ("size", "gc-interval", "policy", "auto-merge", "counter"):
            if word in ("size", "gc-interval", "policy"):
                cur.word()
        else:
            raise located(cur.file, line, f"unknown set property '{word}'")
    if not nset.key_types:
        raise located(cur.file, nset.source.line, f"set '{nset.name}' has no type")


def _set_type(cur: Cursor, table: Table, nset: NSet, word: str, line: int) -> None:
    if word == "typeof":
        parser = RuleParser(cur, table.family)
        nset.key_types = expr_type(parser.expr())
        if nset.data_type is not None:
            cur.expect(":")
            nset.data_type = "verdict" if cur.accept("verdict") else expr_type(parser.expr())[0]
        return
    types = [cur.word("a type")]
    while cur.accept("."):
        types.append(cur.word("a type"))
    nset.key_types = tuple(types)
    if nset.data_type is not None:
        if not cur.accept(":"):
            raise located(cur.file, line, f"map '{nset.name}' needs 'type KEY : DATA'")
        nset.data_type = cur.word("a data type")


def _check_typed(cur: Cursor, nset: NSet, line: int) -> None:
    if not nset.key_types:
        raise located(cur.file, line, f"set '{nset.name}': elements before its type")


def _add(cur: Cursor, rs: NftRuleset, kind: str, line: int, insert: bool) -> None:
    if kind == "table":
        table = _table(cur, rs, line, create=True)
        if cur.peek_text() == "{":
            body = Cursor(cur.group(), cur.file, line)
            while not body.at_end():
                if body.accept("comment"):
                    table.comment = body.string("a comment")
                elif not body.accept(";"):
                    body.next()
        _end(cur)
        return
    table = _table(cur, rs, line, create=False)
    if kind == "chain":
        chain = _chain(cur, table, line)
        if cur.peek_text() == "{":
            body = Cursor(cur.group(), cur.file, line)
            while not body.at_end():
                stmt = body.statement()
                if stmt:
                    _chain_line(Cursor(stmt, cur.file, line), table, chain, line)
        _end(cur)
    elif kind in ("set", "map"):
        nset = _set(cur, table, kind, line)
        group = cur.group() if cur.peek_text() == "{" else []
        body = Cursor([*group, _CLOSE], cur.file, line)
        _set_body(body, table, nset)
        _end(cur)
    elif kind == "rule":
        name = cur.string("a chain name")
        target = table.chains.get(name)
        if target is None:
            raise located(cur.file, line, f"no chain '{name}' in table {table.id}")
        stmt = cur.statement()
        rule = _rule(Cursor(stmt, cur.file, line), table, line)
        if insert:
            target.rules.insert(0, rule)
        else:
            target.rules.append(rule)
    else:  # element
        name = cur.string("a set name")
        found = table.sets.get(name)
        if found is None:
            raise located(cur.file, line, f"no set '{name}' in table {table.id}")
        parser = RuleParser(cur, table.family)
        found.elements.extend(parser.elements(found.key_types, found.data_type))
        _end(cur)


def _remove(cur: Cursor, rs: NftRuleset, word: str, line: int) -> None:
    kind = cur.word("an object kind")
    if kind == "ruleset":
        rs.tables.clear()
        _end(cur)
        return
    if kind not in ("table", "chain", "set", "map", "element"):
        raise located(cur.file, line, f"cannot {word} '{kind}'")
    family, tname = _family_table(cur)
    table = rs.table(family, tname)
    if kind == "table":
        if table is None and word == "delete":
            raise located(cur.file, line, f"no table '{family} {tname}'")
        if table is not None:
            if word == "flush":
                for chain in table.chains.values():
                    chain.rules.clear()
                for nset in table.sets.values():
                    nset.elements.clear()
            else:
                del rs.tables[(family, tname)]
        _end(cur)
        return
    if table is None:
        raise located(cur.file, line, f"no table '{family} {tname}'")
    name = cur.string("a name")
    if kind == "chain":
        target = table.chains.get(name)
        if target is None:
            if word != "destroy":
                raise located(cur.file, line, f"no chain '{name}' in table {table.id}")
        elif word == "flush":
            target.rules.clear()
        else:
            del table.chains[name]
    else:
        found = table.sets.get(name)
        if found is None:
            if word != "destroy":
                raise located(cur.file, line, f"no {kind} '{name}' in table {table.id}")
        elif kind == "element":
            parser = RuleParser(cur, table.family)
            gone = {e.key for e in parser.elements(found.key_types, found.data_type)}
            found.elements = [e for e in found.elements if e.key not in gone]
        elif word == "flush":
            found.elements.clear()
        else:
            del table.sets[name]
    _end(cur)


def _end(cur: Cursor) -> None:
    cur.accept(";")
    tok = cur.peek()
    if tok is not None and tok.kind != NEWLINE:
        raise cur.error(f"unexpected {tok.render()!r}")
