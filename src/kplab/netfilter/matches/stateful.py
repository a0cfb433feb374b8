"""Matches with memory: statistic (random, nth), recent, limit, nfacct.

Their state lives in `Env.state` (`EngineState`), never in the compiled rule, so one compiled
ruleset can serve many nodes. Random draws use the seeded RNG (or `Env.chooser` when every branch
is being enumerated); time is `Env.now_ns`.
"""

from __future__ import annotations

from kplab.netfilter import values
from kplab.netfilter.matches.base import MatchContext, Pred, values_of
from kplab.netfilter.model import Match
from kplab.netfilter.state import Env, RecentEntry, Skb
from kplab.packet import Packet, ip

NS = 1_000_000_000


def _option_map(match: Match, ctx: MatchContext) -> dict[str, tuple[str, ...]]:
    return {opt.name: opt.values for opt in match.options}


def _negated(match: Match) -> bool:
    return any(opt.negated for opt in match.options)


def compile_statistic(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_statistic `statistic_mt`: random compares a 31-bit draw with round(P * 2^31); nth counts
    from `--packet` and matches when the counter wraps past `--every`."""
    opts = _option_map(match, ctx)
    invert = _negated(match)
    mode = opts.get("--mode", ("",))[0]
    try:
        if mode == "random":
            fixed = values.probability_fixed(opts.get("--probability", ("",))[0])
            return [_random_pred(fixed, invert)]
        if mode == "nth":
            every = values.number(opts.get("--every", ("",))[0], "--every")
            start = values.number(opts.get("--packet", ("0",))[0], "--packet")
            if every < 1 or start >= every:
                raise ValueError("--packet must be less than --every")
            return [_nth_pred(next(ctx.slots), every - 1, start, invert)]
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    raise ctx.error(f"statistic: bad --mode '{mode}'")


def _random_pred(fixed: int, invert: bool) -> Pred:
    def pred(p: Packet, s: Skb, e: Env) -> bool:
        if e.chooser is not None:
            return e.chooser(fixed) != invert
        return (e.state.rng.getrandbits(31) < fixed) != invert

    return pred


def _nth_pred(slot: int, every_minus_one: int, start: int, invert: bool) -> Pred:
    def pred(p: Packet, s: Skb, e: Env) -> bool:
        counter = e.state.slots.get(slot)
        if counter is None:
            counter = e.state.slots[slot] = [start]
        value = 0 if counter[0] == every_minus_one else counter[0] + 1
        counter[0] = value
        return (value == 0) != invert

    return pred


def compile_recent(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_recent `recent_mt`: lists of addresses with hit times, per name."""
    opts = _option_map(match, ctx)
    commands = [name for name in ("--set", "--rcheck", "--update", "--remove") if name in opts]
    if len(commands) != 1:
        raise ctx.error("recent: give exactly one of --set, --rcheck, --update, --remove")
    try:
        seconds = values.number(opts["--seconds"][0], "--seconds") if "--seconds" in opts else 0
        hitcount = values.number(opts["--hitcount"][0], "--hitcount") if "--hitcount" in opts else 0
        mask = ip(opts["--mask"][0]) if "--mask" in opts else 0xFFFFFFFF
    except (ValueError, IndexError):
        raise ctx.error("recent: bad --seconds, --hitcount or --mask") from None
    spec = _RecentSpec(
        name=opts.get("--name", ("DEFAULT",))[0],
        command=commands[0],
        seconds=seconds,
        hitcount=hitcount,
        mask=mask,
        dest="--rdest" in opts,
        ttl="--rttl" in opts,
        reap="--reap" in opts,
        invert=_negated(match),
    )
    return [spec.pred]


class _RecentSpec:
    __slots__ = ("command", "dest", "hitcount", "invert", "mask", "name", "reap", "seconds", "ttl")

    def __init__(self, *, name: str, command: str, seconds: int, hitcount: int, mask: int, dest: bool,
                 ttl: bool, reap: bool, invert: bool) -> None:  # fmt: skip
        self.name, self.command, self.seconds, self.hitcount = name, command, seconds, hitcount
        self.mask, self.dest, self.ttl, self.reap, self.invert = mask, dest, ttl, reap, invert

    def pred(self, p: Packet, s: Skb, e: Env) -> bool:
        table = e.state.recent.setdefault(self.name, {})
        addr = (p.dst if self.dest else p.src) & self.mask
        entry = table.get(addr)
        if entry is not None and self.ttl and entry.ttl != p.ttl:
            entry = None
        matched = self.invert
        if entry is None:
            if self.command != "--set":
                return matched
            table[addr] = RecentEntry([e.now_ns], p.ttl)
            return not matched
        if self.command == "--set":
            matched = not matched
        elif self.command == "--remove":
            del table[addr]
            return not matched
        else:
            horizon = e.now_ns - self.seconds * NS
            hits = 0
            for stamp in entry.stamps:
                if self.seconds and stamp < horizon:
                    continue
                hits += 1
                if not self.hitcount or hits >= self.hitcount:
                    matched = not matched
                    break
            if self.reap and self.seconds:
                self._reap(table, addr, horizon)
        if self.command == "--set" or (self.command == "--update" and matched):
            entry.stamps.append(e.now_ns)
            del entry.stamps[: -e.state.recent_max_hits]
            entry.ttl = p.ttl
        return matched

    @staticmethod
    def _reap(table: dict[int, RecentEntry], keep: int, horizon: int) -> None:
        """`recent_entry_reap`: forget addresses whose last hit is older than the window."""
        for addr in [a for a, ent in table.items() if a != keep and ent.stamps[-1] < horizon]:
            del table[addr]


def compile_limit(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_limit `limit_mt`: a token bucket of `--limit-burst` packets refilled at `--limit`."""
    opts = _option_map(match, ctx)
    try:
        count, period = values.rate_per_s(opts.get("--limit", ("3/hour",))[0])
        burst = values.number(opts.get("--limit-burst", ("5",))[0], "--limit-burst")
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    cost = period // count
    cap = cost * max(burst, 1)
    slot = next(ctx.slots)
    invert = _negated(match)

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        bucket = e.state.slots.get(slot)
        if bucket is None:
            bucket = e.state.slots[slot] = [cap, e.now_ns]
        credit = min(cap, bucket[0] + (e.now_ns - bucket[1]))
        bucket[1] = e.now_ns
        if credit >= cost:
            bucket[0] = credit - cost
            return not invert
        bucket[0] = credit
        return invert

    return [pred]


def compile_nfacct(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_nfacct: always matches, and counts the packet (and its L4 payload bytes) under the name."""
    name = values_of(match.options[0], ctx)[0] if match.options else ""

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        counter = e.state.nfacct.get(name)
        if counter is None:
            counter = e.state.nfacct[name] = [0, 0]
        counter[0] += 1
        counter[1] += p.length
        return True

    return [pred]
