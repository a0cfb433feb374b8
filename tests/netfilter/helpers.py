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
