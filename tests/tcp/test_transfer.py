"""Two TCP stacks over a lossy, reordering, duplicating link deliver the byte stream exactly once
and in order.

Payloads are lengths only, so the oracle works on sequence space: every byte the client
application reads must have arrived on the wire (in some segment, possibly a retransmission or
duplicate) before it is read, reads never exceed the response, and the total equals it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.apps import FileServer
from kplab.packet import Packet
from kplab.scenario.schema import Faults
from kplab.sim import MS, SECOND
from kplab.tcp import Connection

from .pair import CLIENT, SERVER, Pair, make_pair, run_downloads

MASK = 0xFFFFFFFF


class StreamOracle:
    """Client app reading everything; checks each read against what arrived on the wire."""

    def __init__(self, pair: Pair, expected: int) -> None:
        self.pair = pair
        self.expected = expected
        self.arrived: list[tuple[int, int]] = []  # wire seq ranges, relative to the server's ISN+1
        self.isn: int | None = None
        self.read = 0
        self.eof = False
        self.error = -1
        pair.link.b_to_a.on_deliver.append(self._arrival)

    def _arrival(self, pkt: Packet) -> None:
        if pkt.flags & 0x02:
            self.isn = pkt.seq
        elif pkt.length and self.isn is not None:
            start = (pkt.seq - self.isn - 1) & MASK
            self.arrived.append((start, start + pkt.length))

    def _covered(self, upto: int) -> bool:
        reach = 0
        for start, end in sorted(self.arrived):
            if start > reach:
                break
            reach = max(reach, end)
        return reach >= upto

    def on_connected(self, conn: Connection) -> None:
        self.pair.client.send(conn, 100)

    def on_data(self, conn: Connection) -> None:
        n = self.pair.client.read(conn, conn.unread)
        self.read += n
        assert self.read <= self.expected, "more bytes than were sent"
        assert self._covered(self.read), "a byte was read before it arrived"
        if conn.eof and not self.eof:
            self.eof = True
            self.pair.client.close(conn)

    def on_closed(self, conn: Connection) -> None:
        self.error = conn.error


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.1),
    duplicate=st.floats(0.0, 0.1),
    reorder=st.floats(0.0, 0.3),
    jitter_us=st.integers(0, 500),
    size=st.integers(1, 150_000),
)
def test_byte_stream_exactly_once_in_order(
    seed: int, loss: float, duplicate: float, reorder: float, jitter_us: int, size: int
) -> None:
    faults = Faults(
        loss=loss, duplicate=duplicate, slow_share=reorder, slow_delay_ns=3 * MS, jitter_ns=jitter_us * 1000
    )
    pair = make_pair(seed, faults=faults, rate_bps=50_000_000, queue_packets=100)
    FileServer(pair.server, SERVER, 80, size)
    oracle = StreamOracle(pair, size)
    pair.client.connect(CLIENT, SERVER, 80, oracle)
    pair.sched.run(until_ns=900 * SECOND)
    assert oracle.eof and oracle.read == size
    assert oracle.error == 0
    assert pair.link.books_balance()


def test_clean_download_is_link_limited_and_quiet() -> None:
    pair = make_pair(1, rate_bps=100_000_000)
    work = run_downloads(pair, 2_000_000, parallel=3)
    assert work.outcomes() == {"completed": 3}
    slowest = max(d.end_ns - d.start_ns for d in work.downloads)
    assert slowest < 600 * MS  # 6 MB over 100 Mbit/s take 480 ms of serialisation
    sctr, cctr = pair.server.stack.ctr, pair.client.stack.ctr
    assert sctr.RetransSegs == 0 and sctr.OutRsts == 0 and cctr.OutRsts == 0
    assert sctr.PassiveOpens == 3 and cctr.ActiveOpens == 3 and sctr.TW == 3


def test_losses_are_recovered_by_sack_fast_retransmit() -> None:
    pair = make_pair(2, faults=Faults(loss=0.02), rate_bps=100_000_000)
    work = run_downloads(pair, 1_000_000)
    assert work.outcomes() == {"completed": 1}
    ctr = pair.server.stack.ctr
    assert ctr.TCPSACKRecovery > 0 and ctr.TCPFastRetrans > 0
    assert ctr.RetransSegs >= pair.link.a_to_b.stats.dropped.get("fault:loss", 0) // 2


def test_queue_overflow_drops_are_counted_and_recovered() -> None:
    pair = make_pair(3, rate_bps=10_000_000, delay_ns=20 * MS, queue_packets=20)
    work = run_downloads(pair, 3_000_000, parallel=4)
    assert work.outcomes() == {"completed": 4}
    assert pair.link.b_to_a.stats.dropped.get("queue-full", 0) > 0
    assert pair.link.books_balance()
