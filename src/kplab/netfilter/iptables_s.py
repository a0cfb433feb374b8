"""Any ruleset text a user pastes: `iptables-save` output, or `iptables -S` output.

`parse_dump(text, file)` reads an `iptables-save` dump (or restore input) as
`iptables_save.parse` does, and `iptables [-t TABLE] -S` output (what guides, issues and EKS
troubleshooting paste: `-P`/`-N`/`-A` lines without `*table` and `COMMIT`). In `-S` output each
table is its own command's output; the table is taken from a command line pasted with it (`#
iptables -t nat -S`, `$ sudo iptables -S -t mangle`), else from the built-in chains of its `-P`
block (INPUT FORWARD OUTPUT: filter; PREROUTING INPUT OUTPUT POSTROUTING: nat; all five: mangle;
PREROUTING OUTPUT: raw), else nat if it has NAT targets, else filter. Every rule keeps its line.
`iptables -L` output is refused with a line naming the commands that give a dump.
"""

from __future__ import annotations

import re

from kplab.errors import located
from kplab.netfilter.iptables_save import _LineError, _Parser, parse
from kplab.netfilter.model import Ruleset
from kplab.netfilter.rulespec import SpecError
from kplab.netfilter.tokenize import TokenizeError

_TABLE_FLAG = re.compile(r"(?:^|\s)(?:-t\s*|--table[=\s]+)(raw|mangle|nat|filter|security)\b")
_POLICY_SETS = {
    frozenset({"INPUT", "FORWARD", "OUTPUT"}): "filter",
    frozenset({"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}): "nat",
    frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}): "mangle",
    frozenset({"PREROUTING", "OUTPUT"}): "raw",
}
_NAT_TARGETS = re.compile(r"\s-j\s+(DNAT|SNAT|MASQUERADE|REDIRECT)\b")
FULL_DUMP = "iptables-save (or iptables-legacy-save / iptables-nft-save, the one the node uses)"


def _first_line(text: str) -> tuple[int, str]:
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip() and not line.startswith("#"):
            return lineno, line.strip()
    return 0, ""


def is_iptables_s(text: str) -> bool:
    _, first = _first_line(text)
    return first.startswith(("-P ", "-N ", "-A ", "$ ", "iptables ", "sudo iptables "))


def parse_dump(text: str, file: str = "<input>", *, lenient: bool = False) -> Ruleset:
    """An `iptables-save` dump or `iptables -S` output, as a Ruleset. Raises InputError."""
    lineno, first = _first_line(text)
    if first.startswith("Chain ") and ("(policy" in first or "references" in first):
        message = f"this is `iptables -L` output, which loses rule details: give {FULL_DUMP} output"
        raise located(file, lineno, f"{message}, or `iptables -S` for each table")
    if not is_iptables_s(text):
        return parse(text, file, lenient=lenient)
    return _parse_s(text, file, lenient)


Section = tuple[str | None, list[tuple[int, str]]]


def _sections(text: str, file: str) -> list[Section]:
    sections: list[Section] = []
    table: str | None = None
    lines: list[tuple[int, str]] = []
    in_policies = False
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("#", "$", "iptables", "sudo ")):
            found = _TABLE_FLAG.search(line)
            if "iptables" in line and ("-S" in line.split() or "--list-rules" in line):
                if lines:
                    sections.append((table, lines))
                table, lines, in_policies = (found.group(1) if found else "filter"), [], False
            continue
        if line.startswith("*") or line == "COMMIT":
            message = f"'{line[:20]}' in `iptables -S` output: give one format"
            raise located(file, lineno, f"{message}, {FULL_DUMP} output or `iptables -S` output")
        is_policy = line.startswith("-P ")
        if is_policy and not in_policies and any(not text.startswith("-P ") for _, text in lines):
            sections.append((table, lines))
            table, lines = None, []
        in_policies = is_policy
        lines.append((lineno, line))
    if lines:
        sections.append((table, lines))
    return sections


def _table_of(table: str | None, lines: list[tuple[int, str]]) -> str:
    if table is not None:
        return table
    policies = frozenset(t.split()[1] for _, t in lines if t.startswith("-P ") and len(t.split()) > 1)
    if policies in _POLICY_SETS:
        return _POLICY_SETS[policies]
    if any(_NAT_TARGETS.search(t) for _, t in lines):
        return "nat"
    return "filter"


def _parse_s(text: str, file: str, lenient: bool) -> Ruleset:
    parser = _Parser(file, lenient)
    for table, lines in _sections(text, file):
        name = _table_of(table, lines)
        if name in parser.ruleset.tables:
            raise located(file, lines[0][0], f"table '{name}' given twice in `iptables -S` output")
        try:
            parser.start_table(lines[0][0], name)
        except _LineError as exc:
            raise located(file, lines[0][0], str(exc)) from None
        for lineno, line in lines:
            if not line.startswith(("-P ", "-N ", "-A ", "-I ")):
                raise located(
                    file, lineno, f"not an `iptables -S` line (expected -P, -N or -A): {line[:40]!r}"
                )
            try:
                if line.startswith("-P ") and len(line.split()) == 6 and line.split()[3] == "-c":
                    line = " ".join(line.split()[:3])  # `iptables -S -v`: policy counters
                parser.line(lineno, line)
            except (_LineError, SpecError, TokenizeError) as exc:
                raise located(file, lineno, str(exc)) from None
        parser.table = None
    return parser.ruleset
