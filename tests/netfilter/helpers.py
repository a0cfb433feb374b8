"""Helpers shared by the netfilter tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kplab.netfilter.model import Ruleset, Source

DATA = Path(__file__).resolve().parent.parent / "data"
NOWHERE = Source("", 0)


def without_sources(ruleset: Ruleset) -> Ruleset:
    """A copy with every Source blanked and header/footer dropped, for structural comparison."""
    out = Ruleset()
    for table in ruleset.tables.values():
        new_table = out.table(table.name)
        new_table.deleted = list(table.deleted)
        for chain in table.chains.values():
            new_chain = new_table.chain(chain.name)
            new_chain.policy = chain.policy
            new_chain.counters = chain.counters
            new_chain.rules = [replace(rule, source=NOWHERE) for rule in chain.rules]
    return out


def strip_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def engine_of(rules: str, table: str = "filter", *, unknown: str = "error", indexed: bool = True):  # type: ignore[no-untyped-def]
    """Compile `rules` (lines of `-A ...`) into an engine; user chains are declared automatically."""
    from kplab.netfilter.compiler import compile_ruleset
    from kplab.netfilter.iptables_save import parse
    from kplab.netfilter.model import BUILTIN_CHAINS

    chains: list[str] = []
    for line in rules.splitlines():
        words = line.split()
        user = len(words) > 1 and words[0] in ("-A", "-I") and words[1] not in BUILTIN_CHAINS[table]
        if user and words[1] not in chains:
            chains.append(words[1])
    head = "".join(f":{name} ACCEPT [0:0]\n" for name in BUILTIN_CHAINS[table])
    head += "".join(f":{name} - [0:0]\n" for name in chains)
    text = f"*{table}\n{head}{rules.strip()}\nCOMMIT\n"
    return compile_ruleset(parse(text, "rules"), unknown=unknown, indexed=indexed)
