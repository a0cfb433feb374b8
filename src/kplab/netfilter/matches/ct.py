"""Matches on conntrack and marks: conntrack, state, mark, connmark.

The packet's conntrack view is `skb.ct` (`None` = no conntrack entry = INVALID). Like the kernel
(`conntrack_mt` in xt_conntrack.c), a packet without an entry (INVALID or UNTRACKED) can only
match on its state: every other conntrack test fails, whatever its `!`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from kplab.netfilter import values
from kplab.netfilter.ctview import CT_STATES, CtStatus, CtView, FiveTuple
from kplab.netfilter.matches.base import MatchContext, Pred, unsupported, values_of
from kplab.netfilter.model import Match, Option
from kplab.netfilter.state import Env, Skb
from kplab.packet import Packet

_STATE_NAMES: Final = frozenset({*CT_STATES, "SNAT", "DNAT"})


def _has_entry(view: CtView | None) -> bool:
    return view is not None and view.state != "UNTRACKED"


def _states(opt: Option, ctx: MatchContext, allowed: frozenset[str]) -> frozenset[str]:
    names = frozenset(values_of(opt, ctx)[0].split(","))
    bad = names - allowed
    if bad:
        raise ctx.error(f"unknown conntrack state '{sorted(bad)[0]}'")
    return names


def state_pred(names: frozenset[str], negated: bool) -> Pred:
    """`--ctstate`/`--state`: INVALID (no entry), UNTRACKED, NEW, ESTABLISHED, RELATED, and the
    virtual SNAT/DNAT (IPS_SRC_NAT/IPS_DST_NAT, or the entry's tuples show the translation)."""
    want_nat = "SNAT" in names or "DNAT" in names

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        view = s.ct
        if view is None:
            return ("INVALID" in names) != negated
        if view.state in names:
            return not negated
        if want_nat and view.state != "UNTRACKED":
            dnat = view.dnat or bool(view.status & CtStatus.DST_NAT)
            snat = view.snat or bool(view.status & CtStatus.SRC_NAT)
            if ("DNAT" in names and dnat) or ("SNAT" in names and snat):
                return not negated
        return negated

    return pred


def _tuple_addr(opt: Option, ctx: MatchContext, reply: bool, source: bool) -> Pred:
    try:
        nets = values.cidrs(values_of(opt, ctx)[0])
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    neg = opt.negated

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        view = s.ct
        tup: FiveTuple | None = None if view is None else (view.reply if reply else view.orig)
        if tup is None:
            return False
        addr = tup.src if source else tup.dst
        return any(addr & m == n for n, m in nets) != neg

    return pred


def _tuple_port(opt: Option, ctx: MatchContext, reply: bool, source: bool) -> Pred:
    try:
        lo, hi = values.port_range(values_of(opt, ctx)[0])
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    neg = opt.negated

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        view = s.ct
        tup = None if view is None else (view.reply if reply else view.orig)
        if tup is None:
            return False
        port = tup.sport if source else tup.dport
        return (lo <= port <= hi) != neg

    return pred


def _status_pred(opt: Option, ctx: MatchContext) -> Pred:
    mask = 0
    for name in values_of(opt, ctx)[0].split(","):
        if name not in CtStatus.__members__:
            raise ctx.error(f"unknown conntrack status '{name}'")
        mask |= int(CtStatus[name])
    negated = opt.negated
    return lambda p, s, e: s.ct is not None and ((s.ct.status & mask) != 0) != negated


def _ct_option(opt: Option, ctx: MatchContext) -> Pred | None:
    name = opt.name
    tuples = {
        "--ctorigsrc": (False, True),
        "--ctorigdst": (False, False),
        "--ctreplsrc": (True, True),
        "--ctrepldst": (True, False),
    }
    ports = {
        "--ctorigsrcport": (False, True),
        "--ctorigdstport": (False, False),
        "--ctreplsrcport": (True, True),
        "--ctrepldstport": (True, False),
    }
    if name in tuples:
        return _tuple_addr(opt, ctx, *tuples[name])
    if name in ports:
        return _tuple_port(opt, ctx, *ports[name])
    if name == "--ctstatus":
        return _status_pred(opt, ctx)
    if name == "--ctdir":
        want = values_of(opt, ctx)[0]
        if want not in ("ORIGINAL", "REPLY"):
            raise ctx.error(f"bad --ctdir '{want}'")
        return lambda p, s, e: s.ct is not None and (s.ct.direction == want) != opt.negated
    if name == "--ctproto":
        proto = values.protocol(values_of(opt, ctx)[0])
        return lambda p, s, e: (
            s.ct is not None and s.ct.orig is not None and ((s.ct.orig.proto == proto) != opt.negated)
        )
    if name == "--ctexpire":
        lo, hi = values.port_range(values_of(opt, ctx)[0]) if ":" in opt.value else (0, 0)
        if ":" not in opt.value:
            lo = hi = values.number(opt.value, "expiry")
        return lambda p, s, e: s.ct is not None and (lo <= s.ct.expires_s <= hi) != opt.negated
    return None


def compile_conntrack(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_conntrack (`conntrack_mt`): the state test first, then the others, which need an entry."""
    preds: list[Pred] = []
    others: list[Pred] = []
    for opt in match.options:
        if opt.name == "--ctstate":
            preds.append(state_pred(_states(opt, ctx, _STATE_NAMES), opt.negated))
            continue
        try:
            pred = _ct_option(opt, ctx)
        except ValueError as exc:
            raise ctx.error(str(exc)) from None
        if pred is None:
            return unsupported("option", f"conntrack {opt.name}", ctx)
        others.append(pred)
    if others:
        preds.append(lambda p, s, e: _has_entry(s.ct))
    return preds + others


def compile_state(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_state: `--state` (no SNAT/DNAT virtual states)."""
    return [state_pred(_states(opt, ctx, frozenset(CT_STATES)), opt.negated) for opt in match.options]


def _mark_preds(match: Match, ctx: MatchContext, make: Callable[[int, int, bool], Pred]) -> list[Pred]:
    """One predicate per `--mark value[/mask]` option, built by `make(value, mask, negated)`."""
    preds: list[Pred] = []
    for opt in match.options:
        try:
            value, mask = values.mark(values_of(opt, ctx)[0])
        except ValueError as exc:
            raise ctx.error(str(exc)) from None
        preds.append(make(value, mask, opt.negated))
    return preds


def compile_mark(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_mark `mark_mt`: (skb->mark & mask) == value."""
    return _mark_preds(match, ctx, _mark_pred)


def _mark_pred(value: int, mask: int, negated: bool) -> Pred:
    return lambda p, s, e: ((s.mark & mask) == value) != negated


def _connmark_pred(value: int, mask: int, negated: bool) -> Pred:
    def pred(p: Packet, s: Skb, e: Env) -> bool:
        view = s.ct
        if view is None or view.state == "UNTRACKED":
            return False
        return ((view.mark & mask) == value) != negated

    return pred


def compile_connmark(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_connmark `connmark_mt`: no entry -> no match, whatever the `!`."""
    return _mark_preds(match, ctx, _connmark_pred)
