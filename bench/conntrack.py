"""Conntrack throughput and memory: established packets/s (window checks on), insert rate, bytes/entry."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

from bench.child import call
from kplab.netfilter.conntrack import PROFILE_6_1, Conntrack, Sysctls
from kplab.packet import TCP, Packet

TITLE = "conntrack"
S = 1_000_000_000
BIG = 1_000_000


def _flow(ct: Conntrack, i: int, now: int) -> tuple[Packet, Packet]:
    """Handshake flow i through the tracker; returns (client data packet, server ACK) templates.

    Like a real table's, every flow has its own initial sequence numbers (so no two entries share
    a sequence-number object), windows and expiry time (`now`).
    """
    src, dst, sport = 0x0A000000 + i // 60000, 0x0A010002, 1024 + i % 60000
    isn = (i * 2654435761 + 12345) & 0xFFFFFFFF
    risn = (i * 40503 * 65537 + 777) & 0xFFFFFFFF
    cwin, swin = 64240 - i % 1000, 65160 - i % 997
    syn = Packet(src, dst, TCP, sport, 80, 0x02, isn, 0, cwin, 0, wscale=7, sackok=True)
    res = ct.lookup(syn, "PREROUTING", now)
    ct.confirm(res, now)
    c1, s1 = (isn + 1) & 0xFFFFFFFF, (risn + 1) & 0xFFFFFFFF
    synack = Packet(dst, src, TCP, 80, sport, 0x12, risn, c1, swin, 0, wscale=7, sackok=True)
    ct.lookup(synack, "PREROUTING", now + 1000)
    ack = Packet(src, dst, TCP, sport, 80, 0x10, c1, s1, 502)
    ct.lookup(ack, "PREROUTING", now + 2000)
    data = Packet(src, dst, TCP, sport, 80, 0x18, c1, s1, 502, 100)
    reply = Packet(dst, src, TCP, 80, sport, 0x10, s1, (c1 + 100) & 0xFFFFFFFF, 509)
    return data, reply


def established_rate(n: int = 200_000, fast_path: bool = True) -> float:
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(1), fast_path=fast_path)
    data, reply = _flow(ct, 0, S)
    lookup = ct.lookup
    start = time.process_time()
    now = S
    for _ in range(n // 2):
        lookup(data, "PREROUTING", now)
        data.seq = (data.seq + 100) & 0xFFFFFFFF
        reply.ack = data.seq
        lookup(reply, "PREROUTING", now)
        now += 1000
    return n / (time.process_time() - start)


def insert_rate(n: int = 50_000) -> float:
    ct = Conntrack(PROFILE_6_1, Sysctls(nf_conntrack_max=10**7), random.Random(1))
    syns = [
        Packet(0x0A000000 + i // 60000, 0x0A010002, TCP, 1024 + i % 60000, 80, 0x02, 1000, 0, 64240)
        for i in range(n)
    ]
    start = time.process_time()
    for syn in syns:
        ct.confirm(ct.lookup(syn, "PREROUTING", S), S)
    return n / (time.process_time() - start)


def bytes_per_entry(n: int) -> float:
    ct = Conntrack(PROFILE_6_1, Sysctls(nf_conntrack_max=10**7), random.Random(1))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        data, reply = _flow(ct, i, S + i * 1000)
        ct.lookup(data, "PREROUTING", S + i * 1000 + 3000)  # one data segment and its ACK
        ct.lookup(reply, "PREROUTING", S + i * 1000 + 4000)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(ct) == n
    return used / n


def entry_bytes() -> float:
    """Bytes of one established TCP entry object alone (no keys, no table)."""
    ct = Conntrack(PROFILE_6_1, Sysctls(), random.Random(1))
    _flow(ct, 0, S)
    (entry,) = ct.entries()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copy = type(entry)(entry.orig_key, entry.reply_key, entry.proto)
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del copy
    return float(size)


def figures(big: int) -> dict[str, float]:
    """The section's figures in this process (`big` entries for the large memory figure; 0: skip)."""
    out = {
        "established": max(established_rate() for _ in range(3)),
        "general": max(established_rate(fast_path=False) for _ in range(3)),
        "inserts": insert_rate(),
        "bytes_100k": bytes_per_entry(100_000),
        "entry": entry_bytes(),
    }
    if big:
        out["bytes_big"] = bytes_per_entry(big)
    return out


def run() -> str:
    native, _ = call("bench.conntrack", "figures", BIG)
    pure, _ = call("bench.conntrack", "figures", 0, pure=True)

    def row(label: str, key: str, unit: str, target: str, ok: bool | None) -> str:
        n, p = native[key], pure.get(key)
        ratio = f"{n / p:.2f}x" if p else "-"
        verdict = "" if ok is None else (" **met**" if ok else " **NOT met**")
        return (
            f"| {label} | {n:,.0f}{unit} | {f'{p:,.0f}{unit}' if p else '-'} | {ratio} | {target}{verdict} |"
        )

    return "\n".join(
        [
            "The tracker alone, profile 6.1, one netns; `python -m bench conntrack`. Rates are per CPU "
            "second "
            "of the measuring process (`time.process_time`), best of 3; each build in its own process. Bytes "
            "per entry by tracemalloc over ESTABLISHED entries (the pure build is measured at 100k only).",
            "",
            "| measure | compiled | pure | compiled / pure | target |",
            "|---|---:|---:|---:|---|",
            row("established packets/s (data + ACK, window checks on)", "established", "", ">= 1,000,000",
                native["established"] >= 1_000_000),
            row("same, general path only (fast path off)", "general", "", "-", None),
            row("new-flow inserts/s (SYN lookup + confirm)", "inserts", "", "-", None),
            row("bytes of one TCP entry object", "entry", " B", "-", None),
            row("bytes per entry, 100k entries", "bytes_100k", " B", "-", None),
            row("bytes per entry, 1M entries", "bytes_big", " B", "<= 400", native["bytes_big"] <= 400),
            "",
            "Every flow has its own initial sequence numbers, windows and expiry time, as in a real table.",
            f"Bytes per entry, compiled: the entry is one object of {native['entry']:.0f} B (pure: "
            f"{pure['entry']:.0f} B plus its int objects): 40 B of object header, GC link and vtable, "
            "three references (the two keys, accounting) and the kernel's fixed-width fields unboxed "
            "(`mypy_extensions`: sequence numbers, windows, timeouts and mark as i64, status as i32, "
            "flags, scales, state and counters as u8), with the TCP state "
            "(`ip_ct_tcp` and both directions' `seen[]`) inline rather than three more objects. Then "
            "the two packed keys, 104-bit ints of 40 B each, and the table dict holding both tuples "
            "(two slots of 24 B at most two-thirds full plus the index: about 84 B per entry at 1M).",
            "Per established packet the tracker allocates only the packed key (two big-int "
            "operations) and the `CtResult` it returns (the caller keeps it with the packet through "
            "the hooks, so it is not reused); the entry is updated in place.",
        ]
    )  # fmt: skip
