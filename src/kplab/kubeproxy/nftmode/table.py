"""kube-proxy's nftables table as knftables holds it: transactions of add/flush/delete operations
in `nft -f` syntax, applied to a model of one table (as knftables' Fake does), and the table dumped
as the `add ...` lines of `Fake.Dump()` (a whole, loadable ruleset).

Dump layout (the fixtures' canonical order, loadable by `nft -f`): the table; chains, sets and
maps, each group sorted by name; rules chain by chain in chain-name order; set elements then map
elements, each group sorted by line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kplab.kubeproxy.nftmode.names import TABLE

TABLE_COMMENT = "rules for kube-proxy"
_REF = re.compile(r"(?:^|\s)(?:jump|goto)\s+(\S+)|@(\S+)")


def go_quote(text: str) -> str:
    """Go's `%q` for the printable ASCII comments kube-proxy writes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: `verb kind family kube-proxy name [body]`."""

    verb: str  # add, flush, delete
    kind: str  # table, chain, set, map, rule, element
    name: str  # object (chain for a rule, set/map for an element; "" for the table)
    body: str = ""  # spec `{ ... ; }`, rule text, or element `{ key [comment ".."] [: value] }`
    key: str = ""  # an element's key (`a . b . c`)


@dataclass(slots=True)
class Transaction:
    family: str  # ip or ip6
    ops: list[Op] = field(default_factory=list)

    def add(self, kind: str, name: str, body: str = "", key: str = "") -> None:
        self.ops.append(Op("add", kind, name, body, key))

    def flush(self, kind: str, name: str) -> None:
        self.ops.append(Op("flush", kind, name))

    def delete(self, kind: str, name: str, key: str = "") -> None:
        self.ops.append(Op("delete", kind, name, "{ " + key + " }" if key else "", key))

    def rule(self, chain: str, rule: str, comment: str | None = None) -> None:
        self.add("rule", chain, rule + (f" comment {go_quote(comment)}" if comment is not None else ""))

    def element(self, container: str, key: str, value: str = "", comment: str | None = None) -> None:
        text = key + (f" comment {go_quote(comment)}" if comment is not None else "")
        text += f" : {value}" if value else ""
        self.add("element", container, "{ " + text + " }", key)

    def lines(self) -> list[str]:
        return [line(op, self.family) for op in self.ops]


def line(op: Op, family: str) -> str:
    head = f"{op.verb} {op.kind} {family} {TABLE}"
    if op.kind == "table":
        return f"{head} {op.body}" if op.body else head
    return f"{head} {op.name} {op.body}" if op.body else f"{head} {op.name}"


@dataclass(slots=True)
class Container:
    """A chain (rules), set or map (elements by key)."""

    kind: str
    spec: str = ""
    rules: list[str] = field(default_factory=list)
    elements: dict[str, str] = field(default_factory=dict)  # key -> element body


class TransactionError(Exception):
    """What the kernel (or knftables' Fake) would refuse; the table is left unchanged."""


@dataclass(slots=True)
class Table:
    family: str
    exists: bool = False
    comment: str = ""
    objects: dict[str, Container] = field(default_factory=dict)  # chains, sets, maps share a namespace

    def names(self, kind: str) -> list[str]:
        return sorted(n for n, c in self.objects.items() if c.kind == kind)

    def apply(self, tx: Transaction) -> None:
        """Apply all of `tx` or nothing (one `nft -f` batch)."""
        saved = (self.exists, self.comment, _copy(self.objects))
        try:
            for op in tx.ops:
                self._apply(op)
            self._check_refs()
        except TransactionError:
            self.exists, self.comment, self.objects = saved
            raise

    def _apply(self, op: Op) -> None:
        if op.kind == "table":
            if op.verb == "add":
                self.exists = True
                self.comment = TABLE_COMMENT if TABLE_COMMENT in op.body else self.comment
            elif op.verb == "delete":
                self.exists, self.objects = False, {}
            else:
                for obj in self.objects.values():
                    obj.rules.clear()
                    obj.elements.clear()
            return
        if not self.exists:
            raise TransactionError(f"{line(op, self.family)}: no such table")
        if op.kind in ("chain", "set", "map"):
            self._container(op)
        elif op.kind == "rule":
            self._get(op, "chain").rules.append(op.body)
        else:  # an element
            elements = self._get(op, "set", "map").elements
            if op.verb == "add":
                elements[op.key] = op.body
            elif elements.pop(op.key, None) is None:
                raise TransactionError(f"{line(op, self.family)}: no such element")

    def _container(self, op: Op) -> None:
        found = self.objects.get(op.name)
        if op.verb == "add":
            if found is None:
                self.objects[op.name] = Container(op.kind, op.body)
            elif found.kind != op.kind:
                raise TransactionError(f"{line(op, self.family)}: {op.name} is a {found.kind}")
            elif op.body:
                found.spec = op.body
            return
        obj = self._get(op, op.kind)
        if op.verb == "flush":
            obj.rules.clear()
            obj.elements.clear()
        else:
            del self.objects[op.name]

    def _get(self, op: Op, *kinds: str) -> Container:
        found = self.objects.get(op.name)
        if found is None or found.kind not in kinds:
            raise TransactionError(f"{line(op, self.family)}: no such {' or '.join(kinds)} {op.name}")
        return found

    def _check_refs(self) -> None:
        """Every `jump`/`goto` target and `@set` of a rule or element exists (checkRuleRefs)."""
        for name, obj in self.objects.items():
            for text in [*obj.rules, *obj.elements.values()]:
                for target, ref in _REF.findall(text):
                    wanted = target or ref
                    if wanted not in self.objects:
                        raise TransactionError(f"{name}: {text}: no such chain, set or map {wanted}")

    def dump(self) -> list[str]:
        """`Fake.Dump()` with elements sorted: the whole table as `add` lines."""
        if not self.exists:
            return []
        out = [line(Op("add", "table", "", f"{{ comment {go_quote(self.comment)} ; }}"), self.family)]
        for kind in ("chain", "set", "map"):
            for name in self.names(kind):
                out.append(line(Op("add", kind, name, self.objects[name].spec), self.family))
        for name in self.names("chain"):
            out += [line(Op("add", "rule", name, rule), self.family) for rule in self.objects[name].rules]
        for kind in ("set", "map"):
            for name in self.names(kind):
                elements = self.objects[name].elements.values()
                out += sorted(line(Op("add", "element", name, e), self.family) for e in elements)
        return out


def _copy(objects: dict[str, Container]) -> dict[str, Container]:
    return {n: Container(c.kind, c.spec, list(c.rules), dict(c.elements)) for n, c in objects.items()}
