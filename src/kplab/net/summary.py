"""What a run of the emulator observed, as plain JSON-ready data, and its books.

The books: every packet a pod sent (plus every duplicate a link made) is, at the end of a run,
delivered to a pod, delivered to a node's own stack, dropped somewhere with a reason (a link
queue, a fault, a node's rules or conntrack, the switch, a pod), or still in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kplab.net.cluster import EmulatedCluster
from kplab.packet import fmt_ip


@dataclass(frozen=True, slots=True)
class Books:
    sent: int
    duplicated: int
    delivered: int
    dropped: int
    in_flight: int

    @property
    def balanced(self) -> bool:
        return self.sent + self.duplicated == self.delivered + self.dropped + self.in_flight


def books(c: EmulatedCluster) -> Books:
    channels = [ch for link in c.links.values() for ch in (link.a_to_b, link.b_to_a)]
    return Books(
        sent=sum(p.sent for p in c.pods.values()),
        duplicated=sum(ch.stats.duplicated for ch in channels),
        delivered=sum(p.received for p in c.pods.values())
        + sum(n.stats.delivered_local for n in c.nodes.values()),
        dropped=sum(sum(ch.stats.dropped.values()) for ch in channels)
        + sum(sum(n.stats.drops.values()) for n in c.nodes.values())
        + sum(c.switch.drops.values()),
        in_flight=sum(ch.stats.in_flight for ch in channels),
    )


def connections(c: EmulatedCluster) -> list[dict[str, Any]]:
    rows = []
    for client, workloads in c.workloads.items():
        for w in workloads:
            _, raddr, rport = w.target
            for d in w.downloads:
                rows.append(
                    {
                        "client": client,
                        "local_port": d.local_port,
                        "target": f"{fmt_ip(raddr)}:{rport}",
                        "outcome": d.outcome.value,
                        "bytes": d.received,
                        "expected_bytes": d.expected_bytes,
                        "start_s": round(d.start_ns / 1e9, 6),
                        "end_s": round(d.end_ns / 1e9, 6) if d.end_ns else None,
                    }
                )
    rows.sort(key=lambda r: (r["client"], r["start_s"], r["local_port"]))
    return rows


def outcomes(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    return dict(sorted(counts.items()))


def summary(c: EmulatedCluster) -> dict[str, Any]:
    rows = connections(c)
    b = books(c)
    return {
        "scenario": c.scenario.name,
        "seed": c.scenario.seed,
        "sim_seconds": int(c.sched.now_ns) / 1e9,
        "packets": b.sent + b.duplicated,
        "outcomes": outcomes(rows),
        "connections": rows,
        "nodes": {
            name: {
                "forwarded": n.stats.forwarded,
                "unnated_escapes": n.stats.unnated_escapes,
                "invalid_by_reason": dict(sorted(n.stats.invalid_by_reason.items())),
                "ignored_by_reason": dict(sorted(n.stats.ignored_by_reason.items())),
                "drops": dict(sorted(n.stats.drops.items())),
                "conntrack": n.ct.stats.as_dict(),
            }
            for name, n in c.nodes.items()
        },
        "links": {
            name: {
                "delivered": link.a_to_b.stats.delivered + link.b_to_a.stats.delivered,
                "drops": link.drops(),
            }
            for name, link in c.links.items()
        },
        "tcp": {name: {k: v for k, v in sorted(p.tcp.counters.items()) if v} for name, p in c.pods.items()},
        "servers": {
            name: {
                "accepted": s.stats.accepted,
                "served": s.stats.served,
                "errors": dict(sorted(s.stats.errors.items())),
            }
            for name, s in c.servers.items()
        },
        "books": {
            "sent": b.sent,
            "duplicated": b.duplicated,
            "delivered": b.delivered,
            "dropped": b.dropped,
            "in_flight": b.in_flight,
            "balanced": b.balanced,
        },
    }
