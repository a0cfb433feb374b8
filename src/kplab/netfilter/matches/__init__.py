"""Match modules compiled into predicates `(packet, skb, env) -> bool`, one compiler per module.

`compile_matches` turns a rule's matches into a tuple of predicates that must all hold. A module
kplab does not know compiles, by the caller's `unknown` policy, to a predicate that raises
`InputError("file:line: unsupported match 'X'")` when evaluated ("error", the default), never
matches, or always matches.
"""

from __future__ import annotations

from collections.abc import Iterator

from kplab.netfilter import values
from kplab.netfilter.matches.base import UNKNOWN_POLICIES, Compiler, MatchContext, Pred, unsupported
from kplab.netfilter.matches.basic import (
    compile_comment,
    compile_icmp,
    compile_implicit,
    compile_iprange,
    compile_multiport,
    compile_physdev,
    compile_ports,
)
from kplab.netfilter.matches.ct import compile_connmark, compile_conntrack, compile_mark, compile_state
from kplab.netfilter.matches.local import compile_addrtype, compile_set
from kplab.netfilter.matches.stateful import compile_limit, compile_nfacct, compile_recent, compile_statistic
from kplab.netfilter.model import Rule
from kplab.netfilter.optspec import IMPLICIT_SHORT

COMPILERS: dict[str, Compiler] = {
    "": compile_implicit,
    "tcp": compile_ports,
    "udp": compile_ports,
    "sctp": compile_ports,
    "icmp": compile_icmp,
    "multiport": compile_multiport,
    "comment": compile_comment,
    "conntrack": compile_conntrack,
    "state": compile_state,
    "mark": compile_mark,
    "connmark": compile_connmark,
    "addrtype": compile_addrtype,
    "statistic": compile_statistic,
    "recent": compile_recent,
    "nfacct": compile_nfacct,
    "iprange": compile_iprange,
    "physdev": compile_physdev,
    "set": compile_set,
    "limit": compile_limit,
}


def rule_protocol(rule: Rule) -> int | None:
    """The rule's `-p` protocol number, or None when absent, negated or unreadable."""
    for match in rule.matches:
        if match.module:
            continue
        for opt in match.options:
            if IMPLICIT_SHORT.get(opt.name, opt.name) == "-p" and not opt.negated and opt.values:
                try:
                    return values.protocol(opt.values[0])
                except ValueError:
                    return None
    return None


def compile_matches(rule: Rule, table: str, unknown: str, slots: Iterator[int]) -> tuple[Pred, ...]:
    """All predicates of `rule`, implicit ones first (they are the cheapest)."""
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown policy must be one of {UNKNOWN_POLICIES}")
    ctx = MatchContext(rule, table, rule_protocol(rule), unknown, slots)
    preds: list[Pred] = []
    for match in rule.matches:
        compiler = COMPILERS.get(match.module)
        if compiler is None:
            preds.extend(unsupported("match", match.module, ctx))
        else:
            preds.extend(compiler(match, ctx))
    return tuple(preds)


__all__ = ["COMPILERS", "MatchContext", "Pred", "compile_matches", "rule_protocol"]
