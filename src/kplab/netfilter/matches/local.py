"""Matches on what the node knows about addresses: addrtype (local, unicast ...) and set (ipset).

addrtype asks the node's routing view (`Env.local_addrs`, `Env.iface_addrs`): LOCAL is any of the
node's addresses or 127.0.0.0/8; MULTICAST is 224.0.0.0/4; BROADCAST is 255.255.255.255;
everything else is UNICAST. ipset membership is supplied by the caller (`Env.sets`).
"""

from __future__ import annotations

from kplab.errors import InputError
from kplab.netfilter.matches.base import MatchContext, Pred, values_of
from kplab.netfilter.model import Match
from kplab.netfilter.state import Env, Skb
from kplab.packet import Packet

ADDR_TYPES = frozenset(
    {
        "UNSPEC",
        "UNICAST",
        "LOCAL",
        "BROADCAST",
        "ANYCAST",
        "MULTICAST",
        "BLACKHOLE",
        "UNREACHABLE",
        "PROHIBIT",
        "THROW",
        "NAT",
        "XRESOLVE",
    }
)
_LOCAL_ONLY = frozenset({"LOCAL"})


def addr_type(addr: int, env: Env, iface: str | None) -> str:
    """The route type of `addr` as `inet_addr_type` would say, from the node's addresses.

    With `iface` (`--limit-iface-in/out`), LOCAL means an address of that interface (or loopback).
    """
    if iface is not None and iface in env.iface_addrs:
        local = addr >> 24 == 127 or addr in env.iface_addrs[iface]
    else:
        local = env.is_local(addr)
    if local:
        return "LOCAL"
    if addr >> 28 == 0xE:
        return "MULTICAST"
    if addr == 0xFFFFFFFF:
        return "BROADCAST"
    if addr == 0:
        return "UNSPEC"
    return "UNICAST"


def _addrtype_pred(source: bool, wanted: frozenset[str], negated: bool, limit: str | None) -> Pred:
    if wanted == _LOCAL_ONLY and limit is None:  # the common case: `--dst-type LOCAL`
        if source:
            return lambda p, s, e: e.is_local(p.src) != negated
        return lambda p, s, e: e.is_local(p.dst) != negated

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        iface = s.in_iface if limit == "in" else s.out_iface if limit == "out" else None
        return (addr_type(p.src if source else p.dst, e, iface) in wanted) != negated

    return pred


def compile_addrtype(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_addrtype `addrtype_mt_v1`."""
    opts = {opt.name: opt for opt in match.options}
    limit = "in" if "--limit-iface-in" in opts else "out" if "--limit-iface-out" in opts else None
    preds: list[Pred] = []
    for name in ("--src-type", "--dst-type"):
        opt = opts.get(name)
        if opt is None:
            continue
        wanted = frozenset(values_of(opt, ctx)[0].split(","))
        if not wanted <= ADDR_TYPES:
            raise ctx.error(f"addrtype: unknown type '{sorted(wanted - ADDR_TYPES)[0]}'")
        preds.append(_addrtype_pred(name == "--src-type", wanted, opt.negated, limit))
    return preds


def _set_pred(name: str, dirs: tuple[str, ...], negated: bool, unknown: str, error: InputError) -> Pred:
    """The set test; without membership for the set, the `--unknown` policy: always-match (the
    test holds, negated or not), never-match (it fails), or error."""

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        member = e.sets(name, p, dirs) if e.sets is not None else None
        if member is None:
            if unknown == "error":
                raise error
            return unknown == "always-match"
        return member != negated

    return pred


def compile_set(match: Match, ctx: MatchContext) -> list[Pred]:
    """xt_set `--match-set NAME src[,dst...]`: membership comes from the caller (`Env.sets`)."""
    preds: list[Pred] = []
    for opt in match.options:
        if opt.name not in ("--match-set", "--set"):
            continue  # counters options do not change the result
        name, dirs_text = values_of(opt, ctx, 2)
        dirs = tuple(dirs_text.split(","))
        if not all(d in ("src", "dst") for d in dirs):
            raise ctx.error(f"set: bad directions '{dirs_text}'")
        error = ctx.error(
            f"set match '{name}' needs ipset membership: give `ipset save` output (kplab trace --ipset-save "
            "FILE), or --unknown never-match|always-match"
        )
        preds.append(_set_pred(name, dirs, opt.negated, ctx.unknown, error))
    return preds
