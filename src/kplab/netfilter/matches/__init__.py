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
from kplab.netfilter.model import Match, Option, Rule
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


# Modules whose compiled predicates depend only on the match itself (and the rule's protocol):
# identical matches share one predicate, so a large ruleset touches fewer distinct objects.
_SHAREABLE = frozenset({"", "tcp", "udp", "sctp", "icmp", "multiport", "comment", "mark", "connmark",
                        "state", "addrtype", "iprange", "physdev"})  # fmt: skip
_PORT_OPTIONS = frozenset(
    {"--sport", "--source-port", "--dport", "--destination-port", "--tcp-flags", "--syn"}
)

PredCache = dict[object, object]


def _cache_key(match: Match, protocol: int | None) -> object | None:
    module = match.module
    if module == "statistic":
        modes = [opt.values for opt in match.options if opt.name == "--mode"]
        return (match, protocol) if modes == [("random",)] else None
    if module not in _SHAREABLE:
        return None
    if module in ("tcp", "udp", "sctp") and any(opt.name not in _PORT_OPTIONS for opt in match.options):
        return None
    return (match, protocol)


def compile_matches(
    rule: Rule, table: str, unknown: str, slots: Iterator[int], cache: PredCache | None = None
) -> tuple[Pred, ...]:
    """All predicates of `rule`, in the order written (implicit ones first).

    With `cache` (one dict per compiled ruleset), identical matches share their predicates and
    identical predicate tuples are shared too.
    """
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown policy must be one of {UNKNOWN_POLICIES}")
    ctx = MatchContext(rule, table, rule_protocol(rule), unknown, slots)
    preds: list[Pred] = []
    for whole in rule.matches:
        if not whole.module and cache is not None:  # the implicit options are shared one by one
            for opt in sorted(whole.options, key=_host_test):
                preds.extend(_cached(Match("", (opt,)), ctx, cache))
            continue
        preds.extend(_cached(whole, ctx, cache))
    result = tuple(preds)
    if cache is None:
        return result
    return cache.setdefault(("preds", result), result)  # type: ignore[return-value]


def _host_test(opt: Option) -> bool:
    """True for `-s/-d A` on one host: tested last among the rule's own (pure) tests. The result is
    the same in any order; a per-host test is the one object unique to the rule, so a packet that
    fails a shared test first (`! -s 10.0.0.0/8`) need not touch it (fewer cache misses)."""
    name = IMPLICIT_SHORT.get(opt.name, opt.name)
    value = opt.value
    return (
        name in ("-s", "-d")
        and not opt.negated
        and "," not in value
        and ("/" not in value or value.endswith("/32"))
    )


def _cached(match: Match, ctx: MatchContext, cache: PredCache | None) -> list[Pred]:
    compiler = COMPILERS.get(match.module)
    if compiler is None:
        return unsupported("match", match.module, ctx)
    key = _cache_key(match, ctx.protocol) if cache is not None else None
    if key is None or cache is None:
        return compiler(match, ctx)
    found = cache.get(key)
    if found is None:
        found = cache[key] = compiler(match, ctx)
    return found  # type: ignore[return-value]


__all__ = ["COMPILERS", "MatchContext", "Pred", "PredCache", "compile_matches", "rule_protocol"]
