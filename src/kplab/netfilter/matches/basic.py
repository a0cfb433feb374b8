"""Header matches: `-s -d -p -i -o -f`, tcp/udp/sctp ports and flags, icmp, multiport, iprange,
physdev, comment. Pure functions of the packet and the skb's interfaces."""

from __future__ import annotations

from kplab.netfilter import values
from kplab.netfilter.matches.base import MatchContext, Pred, unsupported, values_of
from kplab.netfilter.model import Match, Option
from kplab.netfilter.optspec import IMPLICIT_SHORT
from kplab.netfilter.state import Env, Skb
from kplab.packet import ICMP, SCTP, TCP, UDP, Packet, TcpFlags


def key_part(pred: Pred, part: str) -> Pred:
    """Mark an exact, non-negated `-d A/32`, `-p P` or `--dport N` test: the fast-path index
    (`kplab.netfilter.index`) already guarantees it for the rules it selects, and drops it."""
    pred.key_part = part  # type: ignore[attr-defined]
    return pred


def _addr_pred(opt: Option, ctx: MatchContext, source: bool) -> Pred:
    try:
        nets = values.cidrs(values_of(opt, ctx)[0])
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    neg = opt.negated
    if len(nets) == 1:
        net, mask = nets[0]
        if source:
            if neg:
                return lambda p, s, e: (p.src & mask) != net
            return lambda p, s, e: (p.src & mask) == net
        if neg:
            return lambda p, s, e: (p.dst & mask) != net
        if mask == 0xFFFFFFFF:
            return key_part(lambda p, s, e: p.dst == net, "dst")
        return lambda p, s, e: (p.dst & mask) == net

    def any_net(p: Packet, s: Skb, e: Env) -> bool:
        addr = p.src if source else p.dst
        return any(addr & m == n for n, m in nets) != neg

    return any_net


def iface_pred(pattern: str, negated: bool, field: str) -> Pred:
    """`-i eth0` / `-i cali+` (a trailing `+` matches any name with that prefix); an absent
    interface (no input device on OUTPUT) is the empty name."""
    if pattern.endswith("+"):
        prefix = pattern[:-1]
        if field == "in":
            return lambda p, s, e: (s.in_iface or "").startswith(prefix) != negated
        return lambda p, s, e: (s.out_iface or "").startswith(prefix) != negated
    if field == "in":
        return lambda p, s, e: (s.in_iface == pattern) != negated
    return lambda p, s, e: (s.out_iface == pattern) != negated


def compile_implicit(match: Match, ctx: MatchContext) -> list[Pred]:
    """The rule's own matches (`ipt_ip` in ip_tables.c: `ip_packet_match`)."""
    preds: list[Pred] = []
    for opt in match.options:
        name = IMPLICIT_SHORT.get(opt.name, opt.name)
        if name in ("-s", "-d"):
            preds.append(_addr_pred(opt, ctx, source=name == "-s"))
        elif name == "-p":
            try:
                proto = values.protocol(values_of(opt, ctx)[0])
            except ValueError as exc:
                raise ctx.error(str(exc)) from None
            preds.append(_proto_pred(proto, opt.negated))
        elif name in ("-i", "-o"):
            preds.append(iface_pred(values_of(opt, ctx)[0], opt.negated, "in" if name == "-i" else "out"))
        elif name == "-f":
            # kplab does not fragment: no packet is a non-first fragment.
            preds.append(_const(opt.negated))
    return preds


def _const(result: bool) -> Pred:
    return lambda p, s, e: result


def _proto_pred(proto: int, negated: bool) -> Pred:
    if proto == 0:  # "all"
        return _const(not negated)
    if negated:
        return lambda p, s, e: p.proto != proto
    return key_part(lambda p, s, e: p.proto == proto, "proto")


def _flags_pred(mask: int, comp: int, negated: bool) -> Pred:
    return lambda p, s, e: ((p.flags & mask) == comp) != negated


def _icmp_pred(kind: int, code: int | None, negated: bool) -> Pred:
    if kind == -1:
        return _const(not negated)
    if code is None:
        return lambda p, s, e: (p.icmp_type == kind) != negated
    return lambda p, s, e: (p.icmp_type == kind and p.icmp_code == code) != negated


def _multiport_pred(ranges: tuple[tuple[int, int], ...], side: str, negated: bool) -> Pred:
    def hit(port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in ranges)

    if side == "s":
        return lambda p, s, e: hit(p.sport) != negated
    if side == "d":
        return lambda p, s, e: hit(p.dport) != negated
    return lambda p, s, e: (hit(p.sport) or hit(p.dport)) != negated


def _range_pred(lo: int, hi: int, source: bool, negated: bool) -> Pred:
    if source:
        return lambda p, s, e: (lo <= p.src <= hi) != negated
    return lambda p, s, e: (lo <= p.dst <= hi) != negated


def _port_pred(opt: Option, ctx: MatchContext, source: bool) -> Pred:
    try:
        lo, hi = values.port_range(values_of(opt, ctx)[0])
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    neg = opt.negated
    if lo == hi:
        if source:
            return lambda p, s, e: (p.sport == lo) != neg
        if not neg:
            return key_part(lambda p, s, e: p.dport == lo, "dport")
        return lambda p, s, e: p.dport != lo
    if source:
        return lambda p, s, e: (lo <= p.sport <= hi) != neg
    return lambda p, s, e: (lo <= p.dport <= hi) != neg


def _flag_set(text: str, ctx: MatchContext) -> int:
    names = {f.name: int(f) for f in TcpFlags}
    if text == "ALL":  # libxt_tcp: FIN,SYN,RST,PSH,ACK,URG
        return 0x3F
    if text == "NONE":
        return 0
    total = 0
    for part in text.split(","):
        if part not in names:
            raise ctx.error(f"unknown TCP flag '{part}'")
        total |= names[part]
    return total


def compile_ports(match: Match, ctx: MatchContext) -> list[Pred]:
    """tcp/udp/sctp: `--sport --dport` (ranges), tcp `--tcp-flags MASK COMP` and `--syn` (xt_tcpudp)."""
    proto = {"tcp": TCP, "udp": UDP, "sctp": SCTP}[match.module]
    ctx.need_protocol(match, proto)
    preds: list[Pred] = []
    for opt in match.options:
        if opt.name in ("--sport", "--source-port", "--dport", "--destination-port"):
            preds.append(_port_pred(opt, ctx, source=opt.name in ("--sport", "--source-port")))
        elif opt.name in ("--tcp-flags", "--syn"):
            if opt.name == "--syn":
                mask, comp = 0x17, int(TcpFlags.SYN)
            else:
                mask_text, comp_text = values_of(opt, ctx, 2)
                mask, comp = _flag_set(mask_text, ctx), _flag_set(comp_text, ctx)
            preds.append(_flags_pred(mask, comp, opt.negated))
        else:
            return unsupported("option", f"{match.module} {opt.name}", ctx)
    return preds


def compile_icmp(match: Match, ctx: MatchContext) -> list[Pred]:
    """`--icmp-type TYPE[/CODE]` or a name (xt_icmp: `icmp_type_code_match`)."""
    ctx.need_protocol(match, ICMP)
    preds: list[Pred] = []
    for opt in match.options:
        text = values_of(opt, ctx)[0]
        if text in values.ICMP_TYPES:
            kind, code = values.ICMP_TYPES[text]
        else:
            kind_text, sep, code_text = text.partition("/")
            try:
                kind = values.number(kind_text, "icmp type", 255)
                code = values.number(code_text, "icmp code", 255) if sep else None
            except ValueError as exc:
                raise ctx.error(str(exc)) from None
        preds.append(_icmp_pred(kind, code, opt.negated))
    return preds


def compile_multiport(match: Match, ctx: MatchContext) -> list[Pred]:
    """`--sports/--dports/--ports` lists with ranges (xt_multiport: `ports_match_v1`)."""
    ctx.need_protocol(match, TCP, UDP, SCTP)
    preds: list[Pred] = []
    for opt in match.options:
        try:
            ranges = values.port_list(values_of(opt, ctx)[0])
        except ValueError as exc:
            raise ctx.error(str(exc)) from None
        which = {"--sports": "s", "--source-ports": "s", "--dports": "d", "--destination-ports": "d"}
        preds.append(_multiport_pred(ranges, which.get(opt.name, "b"), opt.negated))
    return preds


def compile_iprange(match: Match, ctx: MatchContext) -> list[Pred]:
    preds: list[Pred] = []
    for opt in match.options:
        try:
            lo, hi = values.addr_range(values_of(opt, ctx)[0])
        except ValueError as exc:
            raise ctx.error(str(exc)) from None
        preds.append(_range_pred(lo, hi, opt.name == "--src-range", opt.negated))
    return preds


def compile_physdev(match: Match, ctx: MatchContext) -> list[Pred]:
    """Bridge ports (xt_physdev); a packet that did not cross a bridge has none."""
    preds: list[Pred] = []
    for opt in match.options:
        neg = opt.negated
        if opt.name in ("--physdev-in", "--physdev-out"):
            pattern = values_of(opt, ctx)[0]
            preds.append(_physdev_port(pattern, opt.name == "--physdev-in", neg))
        elif opt.name in ("--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged"):
            preds.append(_physdev_flag(opt.name, neg))
    return preds


def _physdev_port(pattern: str, inbound: bool, negated: bool) -> Pred:
    prefix, wild = (pattern[:-1], True) if pattern.endswith("+") else (pattern, False)

    def pred(p: Packet, s: Skb, e: Env) -> bool:
        name = s.physdev_in if inbound else s.physdev_out
        if name is None:
            return False
        return (name.startswith(prefix) if wild else name == prefix) != negated

    return pred


def _physdev_flag(name: str, negated: bool) -> Pred:
    if name == "--physdev-is-in":
        return lambda p, s, e: (s.physdev_in is not None) != negated
    if name == "--physdev-is-out":
        return lambda p, s, e: (s.physdev_out is not None) != negated
    return lambda p, s, e: s.bridged != negated


def compile_comment(match: Match, ctx: MatchContext) -> list[Pred]:
    return []
