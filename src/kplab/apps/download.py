"""Download clients: connect to an IP:port (a Service VIP or a pod), send a request, read the
response at a given rate, close. Outcomes are what a socket application would see."""

from __future__ import annotations

import errno
import random
from dataclasses import dataclass
from enum import Enum
from typing import Final

from kplab.tcp import Connection, TcpHost


class Outcome(Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    RESET = "reset"  # ECONNRESET / EPIPE
    TIMED_OUT = "timed out"  # ETIMEDOUT
    REFUSED = "refused"  # ECONNREFUSED
    INCOMPLETE = "incomplete"  # clean close before all bytes arrived


_OUTCOME_BY_ERRNO: Final = {
    errno.ECONNRESET: Outcome.RESET,
    errno.EPIPE: Outcome.RESET,
    errno.ETIMEDOUT: Outcome.TIMED_OUT,
    errno.ECONNREFUSED: Outcome.REFUSED,
}


@dataclass(slots=True)
class Download:
    """One download's record."""

    index: int
    start_ns: int
    expected_bytes: int
    received: int = 0
    end_ns: int = 0
    outcome: Outcome = Outcome.RUNNING
    error: int = 0
    local_port: int = 0


class DownloadClient:
    """One connection: request, then read at `read_rate_bps` (None: as fast as data arrives)."""

    __slots__ = (
        "_next_read_ns",
        "_tick_pending",
        "chunk_bytes",
        "conn",
        "host",
        "rate_bps",
        "record",
        "request",
    )

    def __init__(
        self,
        host: TcpHost,
        record: Download,
        request_bytes: int = 100,
        read_rate_bps: int | None = None,
        chunk_bytes: int = 16384,
    ) -> None:
        self.host = host
        self.record = record
        self.request = request_bytes
        self.rate_bps = read_rate_bps
        self.chunk_bytes = chunk_bytes
        self.conn: Connection | None = None
        self._tick_pending = False
        self._next_read_ns = 0

    def start(self, laddr: int, raddr: int, rport: int) -> None:
        self.conn = self.host.connect(laddr, raddr, rport, self)
        self.record.local_port = self.conn.lport

    def on_connected(self, conn: Connection) -> None:
        self.host.send(conn, self.request)

    def on_data(self, conn: Connection) -> None:
        if self.rate_bps is None:
            self.record.received += self.host.read(conn, conn.unread)
            self._maybe_finish(conn)
        elif not self._tick_pending:
            self._tick_pending = True
            sched = self.host.sched
            sched.call_at(max(sched.now_ns, self._next_read_ns), self._tick, conn)

    def _tick(self, conn: Connection) -> None:
        self._tick_pending = False
        n = self.host.read(conn, self.chunk_bytes)
        self.record.received += n
        if n and self.rate_bps:
            sched = self.host.sched
            self._next_read_ns = sched.now_ns + n * 8_000_000_000 // self.rate_bps
            if conn.unread:
                self._tick_pending = True
                sched.call_at(self._next_read_ns, self._tick, conn)
        self._maybe_finish(conn)

    def _maybe_finish(self, conn: Connection) -> None:
        if conn.eof and not conn.unread and self.record.outcome == Outcome.RUNNING:
            rec = self.record
            rec.outcome = Outcome.COMPLETED if rec.received >= rec.expected_bytes else Outcome.INCOMPLETE
            rec.end_ns = self.host.sched.now_ns
            self.host.close(conn)

    def on_closed(self, conn: Connection) -> None:
        rec = self.record
        if rec.outcome != Outcome.RUNNING:
            return
        rec.end_ns = self.host.sched.now_ns
        rec.error = conn.error
        rec.outcome = _OUTCOME_BY_ERRNO.get(conn.error, Outcome.INCOMPLETE)


class DownloadWorkload:
    """`parallel` clients, each starting at a uniform random time in [start_ns, start_ns + spread_ns]
    and doing `repeat` downloads one after the other."""

    def __init__(
        self,
        host: TcpHost,
        laddr: int,
        raddr: int,
        rport: int,
        rng: random.Random,
        expected_bytes: int,
        parallel: int = 1,
        repeat: int = 1,
        start_ns: int = 0,
        spread_ns: int = 0,
        read_rate_bps: int | None = None,
        request_bytes: int = 100,
    ) -> None:
        self.host = host
        self.target = (laddr, raddr, rport)
        self.expected_bytes = expected_bytes
        self.read_rate_bps = read_rate_bps
        self.request_bytes = request_bytes
        self.downloads: list[Download] = []
        for lane in range(parallel):
            at = start_ns + (rng.randrange(spread_ns + 1) if spread_ns else 0)
            host.sched.call_at(at, self._start, lane, repeat)

    def _start(self, lane: int, left: int) -> None:
        rec = Download(len(self.downloads), self.host.sched.now_ns, self.expected_bytes)
        self.downloads.append(rec)
        client = _ChainedClient(self, rec, lane, left - 1)
        client.start(*self.target)

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.downloads:
            counts[d.outcome.value] = counts.get(d.outcome.value, 0) + 1
        return counts


class _ChainedClient(DownloadClient):
    __slots__ = ("lane", "left", "workload")

    def __init__(self, workload: DownloadWorkload, record: Download, lane: int, left: int) -> None:
        super().__init__(workload.host, record, workload.request_bytes, workload.read_rate_bps)
        self.workload = workload
        self.lane = lane
        self.left = left

    def on_closed(self, conn: Connection) -> None:
        super().on_closed(conn)
        self._next()

    def _maybe_finish(self, conn: Connection) -> None:
        running = self.record.outcome == Outcome.RUNNING
        super()._maybe_finish(conn)
        if running and self.record.outcome != Outcome.RUNNING:
            self._next()

    def _next(self) -> None:
        if self.left > 0:
            left, self.left = self.left, 0
            self.workload.host.sched.call_later(0, self.workload._start, self.lane, left)
