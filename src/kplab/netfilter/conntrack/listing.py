"""`conntrack -L` lines (and `-o extended`), as conntrack-tools 1.4 prints them."""

from __future__ import annotations

from kplab.netfilter.conntrack.entry import IPS_ASSURED, IPS_SEEN_REPLY, Entry
from kplab.netfilter.conntrack.profiles import S
from kplab.netfilter.conntrack.table import CtStats
from kplab.netfilter.conntrack.tcp_table import TcpState
from kplab.netfilter.ctview import FiveTuple
from kplab.packet import ICMP, PROTO_NAMES, TCP, fmt_ip


def _tuple_text(t: FiveTuple) -> str:
    head = f"src={fmt_ip(t.src)} dst={fmt_ip(t.dst)}"
    if t.proto == ICMP:
        return f"{head} type={t.dport} code=0 id={t.sport}"
    if t.sport or t.dport:
        return f"{head} sport={t.sport} dport={t.dport}"
    return head


def entry_line(entry: Entry, now_ns: int, extended: bool = False) -> str:
    """One `conntrack -L` line: proto, number, seconds left, TCP state, tuples, flags, mark."""
    name = PROTO_NAMES.get(entry.proto, "unknown")
    left = max(0, (entry.timeout_ns - now_ns) // S)
    parts = [f"{name:<8} {entry.proto} {left}"]
    if entry.proto == TCP:
        parts.append(TcpState(entry.state).name)
    acct = entry.acct
    parts.append(_tuple_text(entry.orig))
    if acct is not None:
        parts.append(f"packets={acct[0]} bytes={acct[1]}")
    if not entry.status & IPS_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    parts.append(_tuple_text(entry.reply))
    if acct is not None:
        parts.append(f"packets={acct[2]} bytes={acct[3]}")
    if entry.status & IPS_ASSURED:
        parts.append("[ASSURED]")
    parts.append(f"mark={entry.mark} use=1")
    line = " ".join(parts)
    return f"ipv4     2 {line}" if extended else line


def listing(entries: list[Entry], now_ns: int, extended: bool = False) -> str:
    lines = [entry_line(e, now_ns, extended) for e in entries]
    lines.append(f"conntrack v1.4.7 (conntrack-tools): {len(entries)} flow entries have been shown.")
    return "\n".join(lines)


def stats_line(stats: CtStats) -> str:
    """`conntrack -S` (conntrack-tools 1.4.7 names; one table, shown as cpu=0)."""
    names = (
        ("found", stats.found),
        ("invalid", stats.invalid),
        ("insert", stats.insert),
        ("insert_failed", stats.insert_failed),
        ("drop", stats.drop),
        ("early_drop", stats.early_drop),
        ("error", stats.icmp_error),
        ("search_restart", stats.search_restart),
        ("clash_resolve", stats.clashres),
        ("chaintoolong", stats.chainlength),
    )
    return "cpu=0   \t" + " ".join(f"{name}={value}" for name, value in names)
