"""Point-to-point links: bandwidth, propagation delay, a finite drop-tail queue, seeded faults.

Each direction is a `Channel`. A packet offered to a channel either waits in its queue (FIFO,
serialised at `rate_bps`) or is dropped because the queue is full ("queue-full"); once on the
wire, fault models may lose it ("fault:loss"), duplicate it, send it over a slower path
(reordering) or add jitter. Every packet offered is, at any time, delivered, dropped with a
reason, or in flight: `Channel.books_balance()` checks it.

The queue is modelled by departure times, not events: one scheduler event per delivered packet.
The times and sizes of the frames still queued are two lists read from `_head` on (a drained
queue resets them), and the arithmetic is in fixed-width `i64`: per packet, nothing is allocated
but the boxed list items and the arrival event.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from mypy_extensions import i64

from kplab.packet import Packet, ip_length
from kplab.scenario.schema import Faults
from kplab.sim.scheduler import Scheduler

Deliver = Callable[[Packet], None]
Tap = Callable[[Packet], None]

ETH_OVERHEAD_BYTES: Final = 14 + 4 + 8 + 12  # header, FCS, preamble, inter-frame gap


@dataclass(slots=True)
class ChannelStats:
    offered: int = 0
    duplicated: int = 0
    delivered: int = 0
    in_flight: int = 0
    bytes_delivered: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def _any(faults: Faults) -> bool:
    return bool(faults.loss or faults.duplicate or faults.slow_share or faults.jitter_ns)


class Channel:
    """One direction of a link."""

    __slots__ = (
        "_any_fault",
        "_arrive_cb",
        "_faults",
        "_finish",
        "_frames",
        "_head",
        "_queued_bytes",
        "delay_ns",
        "deliver",
        "name",
        "on_deliver",
        "on_transmit",
        "queue_bytes",
        "queue_packets",
        "rate_bps",
        "rng",
        "sched",
        "stats",
    )

    def __init__(
        self,
        sched: Scheduler,
        name: str,
        rng: random.Random,
        rate_bps: i64,
        delay_ns: i64,
        queue_packets: i64,
        queue_bytes: int | None,
        faults: Faults,
    ) -> None:
        self.sched = sched
        self.name = name
        self.rng = rng
        self.rate_bps = rate_bps
        self.delay_ns = delay_ns
        self.queue_packets = queue_packets
        self.queue_bytes = queue_bytes
        self._faults = faults
        self._any_fault = _any(faults)
        self.deliver: Deliver | None = None
        self.on_transmit: list[Tap] = []  # called when a packet enters the wire (capture at sender)
        self.on_deliver: list[Tap] = []  # called when a packet arrives (capture at receiver)
        self.stats = ChannelStats()
        self._finish: list[int] = []  # when each queued frame has left the wire, oldest first
        self._frames: list[int] = []  # its size in bytes
        self._head: i64 = 0  # the oldest frame still queued (those before it have left)
        self._queued_bytes: i64 = 0
        self._arrive_cb = self._arrive  # one bound method for every packet's arrival event

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        self._any_fault = _any(faults)

    def send(self, pkt: Packet) -> None:
        """Offer a packet; the channel owns it from now on."""
        now = self.sched.now_ns
        stats = self.stats
        stats.offered += 1
        frame: i64 = ip_length(pkt) + ETH_OVERHEAD_BYTES
        finishes = self._finish
        frames = self._frames
        head = self._head
        queued = self._queued_bytes
        while head < len(finishes) and finishes[head] <= now:
            queued -= frames[head]
            head += 1
        if head == len(finishes):  # drained: start the lists again
            finishes.clear()
            frames.clear()
            head = 0
        elif head >= 1024:  # a link that never drains: drop what has left, now and then
            del finishes[:head]
            del frames[:head]
            head = 0
        self._head = head
        queue_bytes = self.queue_bytes
        if len(finishes) - head >= self.queue_packets or (
            queue_bytes is not None and queued + frame > queue_bytes
        ):
            self._queued_bytes = queued
            stats.drop("queue-full")
            return
        self._queued_bytes = queued + frame
        rate = self.rate_bps
        start: i64 = finishes[-1] if finishes else now
        finish = start + (frame * 8_000_000_000 // rate if rate else 0)
        finishes.append(finish)
        frames.append(frame)
        if self.on_transmit:
            for tap in self.on_transmit:
                tap(pkt)
        if self._any_fault:  # one flag per packet, not four reads of the (pure Python) Faults
            self._faulty(pkt, finish + self.delay_ns)
            return
        stats.in_flight += 1
        self.sched.call_at(finish + self.delay_ns, self._arrive_cb, pkt)

    def _faulty(self, pkt: Packet, arrive: int) -> None:
        faults = self._faults
        rng = self.rng
        if faults.loss and rng.random() < faults.loss:
            self.stats.drop("fault:loss")
            return
        copies = [pkt]
        if faults.duplicate and rng.random() < faults.duplicate:
            self.stats.duplicated += 1
            copies.append(pkt.copy())
        for copy in copies:
            at = arrive
            if faults.slow_share and rng.random() < faults.slow_share:
                at += faults.slow_delay_ns
            if faults.jitter_ns:
                at += rng.randrange(faults.jitter_ns + 1)
            self.stats.in_flight += 1
            self.sched.call_at(at, self._arrive, copy)

    def _arrive(self, pkt: Packet) -> None:
        stats = self.stats
        stats.in_flight -= 1
        if self.on_deliver:
            for tap in self.on_deliver:
                tap(pkt)
        if self.deliver is None:
            stats.drop("no-receiver")
            return
        stats.delivered += 1
        stats.bytes_delivered += pkt.length
        self.deliver(pkt)

    def books_balance(self) -> bool:
        """offered + duplicated == delivered + dropped + in flight."""
        s = self.stats
        return s.offered + s.duplicated == s.delivered + sum(s.dropped.values()) + s.in_flight


class Link:
    """A full-duplex link between end `a` and end `b` (e.g. a veth pair, a cable)."""

    __slots__ = ("a_to_b", "b_to_a", "name")

    def __init__(
        self,
        sched: Scheduler,
        name: str,
        rng: random.Random,
        rate_bps: int = 10_000_000_000,
        delay_ns: int = 50_000,
        queue_packets: int = 1000,
        queue_bytes: int | None = None,
        faults: Faults | None = None,
        faults_b_to_a: Faults | None = None,
    ) -> None:
        self.name = name
        forward = faults or Faults()
        backward = faults_b_to_a if faults_b_to_a is not None else forward
        self.a_to_b = Channel(
            sched, f"{name}:a>b", rng, rate_bps, delay_ns, queue_packets, queue_bytes, forward
        )
        self.b_to_a = Channel(
            sched, f"{name}:b>a", rng, rate_bps, delay_ns, queue_packets, queue_bytes, backward
        )

    def attach(self, deliver_at_a: Deliver, deliver_at_b: Deliver) -> None:
        """Who receives at each end: `deliver_at_b(pkt)` gets what `a` sends, and vice versa."""
        self.a_to_b.deliver = deliver_at_b
        self.b_to_a.deliver = deliver_at_a

    def send_from_a(self, pkt: Packet) -> None:
        self.a_to_b.send(pkt)

    def send_from_b(self, pkt: Packet) -> None:
        self.b_to_a.send(pkt)

    def books_balance(self) -> bool:
        return self.a_to_b.books_balance() and self.b_to_a.books_balance()

    def drops(self) -> dict[str, int]:
        """Drops of both directions by reason."""
        total: dict[str, int] = {}
        for ch in (self.a_to_b, self.b_to_a):
            for reason, n in ch.stats.dropped.items():
                total[reason] = total.get(reason, 0) + n
        return total
