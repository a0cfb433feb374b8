"""Escaped reverse NAT in captures: a backend's reply that left the node un-NATed, and what followed.

A client connected to a Service VIP sees the backend's packets with the VIP as source. A packet
from the backend pod's own address to the client's port, seen where the client's VIP-side packets
are seen (same interface), is one that conntrack called INVALID and NAT skipped. The client has no
socket for it and answers with a RST whose seq is the escaped segment's ACK (RFC 9293 3.10.7.1).
Flows are matched across NAT by the client's address and port (the same on both sides of DNAT) and
checked by sequence numbers (the escaped segment's ACK continues the client's sequence space).
Whether the server died: its rcv_nxt is the ACK of its last segment before the RST; an exact RST
resets it (it then answers the client's next segments with RSTs); an inexact one in window gets a
challenge ACK and the connection lives on (RFC 5961 3.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kplab.diagnose.capture import ACK, FIN, RST, SYN, Segment

Cidr = tuple[int, int]  # (network, mask)
Endpoint = tuple[int, int]  # (address, port)
SEQ_SLACK = 1 << 24


def _in(addr: int, cidrs: Iterable[Cidr]) -> bool:
    return any(addr & mask == net for net, mask in cidrs)


def _near(a: int, b: int) -> bool:
    return min((a - b) % 2**32, (b - a) % 2**32) < SEQ_SLACK


@dataclass(slots=True)
class VipFlow:
    client: Endpoint
    vip: Endpoint
    places: set[str] = field(default_factory=set)  # where replies were captured reverse-NATed
    to_client: list[Segment] = field(default_factory=list)  # VIP -> client, in time order
    from_client: list[Segment] = field(default_factory=list)


@dataclass(slots=True)
class Escape:
    flow: VipFlow
    escaped: Segment
    backend: Endpoint
    seq_match: bool
    escaped_count: int = 1
    rst: Segment | None = None
    rcv_nxt: int | None = None  # the server's, from the ACK of its last segment before the RST
    outcome: str = "unknown"  # "reset", "survived" or "unknown"
    outcome_segment: Segment | None = None
    answer: Segment | None = None  # the server side's first segment after the RST

    @property
    def exact(self) -> bool | None:
        if self.rst is None or self.rcv_nxt is None:
            return None
        return self.rst.seq == self.rcv_nxt


def find_escapes(segments: list[Segment], services: list[Cidr], pods: list[Cidr]) -> list[Escape]:
    ordered = sorted(segments, key=lambda s: (s.ts_ns, s.file, s.frame))
    flows = _vip_flows(ordered, services)
    escapes: dict[Endpoint, Escape] = {}
    for seg in ordered:
        flow = flows.get((seg.dst, seg.dport))
        if flow is None or _in(seg.src, services) or (pods and not _in(seg.src, pods)):
            continue
        if seg.iface not in flow.places:
            continue  # e.g. the node's uplink, where every reply is pod-addressed before reverse NAT
        found = escapes.get(flow.client)
        if found is not None:
            found.escaped_count += 1
            continue
        escapes[flow.client] = Escape(flow, seg, (seg.src, seg.sport), _seq_match(flow, seg))
    by_tuple: dict[tuple[Endpoint, Endpoint], list[Segment]] = {}
    for seg in ordered:
        by_tuple.setdefault(((seg.src, seg.sport), (seg.dst, seg.dport)), []).append(seg)
    for escape in escapes.values():
        _follow(escape, by_tuple)
    return sorted(escapes.values(), key=lambda e: e.escaped.ts_ns)


def _vip_flows(ordered: list[Segment], services: list[Cidr]) -> dict[Endpoint, VipFlow]:
    flows: dict[Endpoint, VipFlow] = {}
    for seg in ordered:
        if _in(seg.dst, services) and not _in(seg.src, services):
            flow = flows.setdefault((seg.src, seg.sport), VipFlow((seg.src, seg.sport), (seg.dst, seg.dport)))
            flow.from_client.append(seg)
        elif _in(seg.src, services) and not _in(seg.dst, services):
            flow = flows.setdefault((seg.dst, seg.dport), VipFlow((seg.dst, seg.dport), (seg.src, seg.sport)))
            flow.to_client.append(seg)
            flow.places.add(seg.iface)
    return flows


def _seq_match(flow: VipFlow, seg: Segment) -> bool:
    """The escaped segment continues the VIP-side flow: its ACK is near the client's sequence
    numbers, or its SEQ near the server's."""
    acks = any(_near(seg.ack, c.seq) for c in flow.from_client) if seg.flags & ACK else False
    return acks or any(_near(seg.seq, s.seq) for s in flow.to_client)


def _follow(escape: Escape, by_tuple: dict[tuple[Endpoint, Endpoint], list[Segment]]) -> None:
    """The client's RST to the backend after the escape, the server's rcv_nxt, and what came next.
    `by_tuple` holds every segment by (source, destination), in time order."""
    client, backend = escape.flow.client, escape.backend
    start = escape.escaped.ts_ns
    rst = next((s for s in by_tuple.get((client, backend), []) if s.ts_ns >= start and s.flags & RST), None)
    if rst is None:
        return
    escape.rst = rst
    before = [s for s in escape.flow.to_client if s.ts_ns <= rst.ts_ns and s.flags & ACK]
    escape.rcv_nxt = (
        before[-1].ack if before else (escape.escaped.ack if escape.escaped.flags & ACK else None)
    )
    replies = by_tuple.get((escape.flow.vip, client), []) + by_tuple.get((backend, client), [])
    after = sorted((s for s in replies if s.ts_ns > rst.ts_ns), key=lambda s: (s.ts_ns, s.file, s.frame))
    escape.answer = after[0] if after else None
    died = next((s for s in after if s.flags & RST), None)
    if died is not None:
        escape.outcome, escape.outcome_segment = "reset", died
        return
    # Segments the server sent before the RST reached it still arrive for about a round trip.
    settle = rst.ts_ns + 2 * _rtt_ns(escape.flow) + 10_000_000
    later = [s for s in after if s.ts_ns > settle or s.flags & FIN]
    if later:
        escape.outcome, escape.outcome_segment = "survived", later[0]


def _rtt_ns(flow: VipFlow) -> int:
    """The handshake's round trip (SYN to SYN/ACK at the client side), else 200 ms."""
    syn = next((s for s in flow.from_client if s.flags & SYN and not s.flags & ACK), None)
    synack = next((s for s in flow.to_client if s.flags & SYN and s.flags & ACK), None)
    if syn is not None and synack is not None and synack.ts_ns >= syn.ts_ns:
        return synack.ts_ns - syn.ts_ns
    return 200_000_000
