"""What every match compiler shares: the predicate type and the compile context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kplab.errors import InputError, located
from kplab.netfilter.model import Match, Option, Rule
from kplab.netfilter.state import Env, Skb
from kplab.packet import Packet

Pred = Callable[[Packet, Skb, Env], bool]
UNKNOWN_POLICIES = ("error", "never-match", "always-match")


@dataclass(slots=True)
class MatchContext:
    """What a match compiler may need besides the match: the rule (for errors), the table, the
    rule's protocol (`-p`, None if absent or negated), the unknown policy, state slot numbers."""

    rule: Rule
    table: str
    protocol: int | None
    unknown: str
    slots: Iterator[int]

    def error(self, message: str) -> InputError:
        return located(self.rule.source.file, self.rule.source.line, message)

    def need_protocol(self, match: Match, *protocols: int) -> None:
        if self.protocol not in protocols:
            raise self.error(f"match '{match.module}' needs a matching '-p' protocol")


Compiler = Callable[[Match, MatchContext], list[Pred]]


def negatable(pred: Pred, opt: Option) -> Pred:
    """`pred`, inverted when the option carries `!`."""
    if not opt.negated:
        return pred
    return lambda p, s, e: not pred(p, s, e)


def values_of(opt: Option, ctx: MatchContext, count: int = 1) -> tuple[str, ...]:
    if len(opt.values) != count:
        raise ctx.error(f"option '{opt.name}' takes {count} value(s), got {len(opt.values)}")
    return opt.values


def unsupported(what: str, name: str, ctx: MatchContext) -> list[Pred]:
    """The predicate for a match kplab cannot evaluate, by the caller's unknown policy."""
    if ctx.unknown == "always-match":
        return []
    if ctx.unknown == "never-match":
        return [lambda p, s, e: False]
    error = ctx.error(f"unsupported {what} '{name}'")

    def fail(p: Packet, s: Skb, e: Env) -> bool:
        raise error

    return [fail]
