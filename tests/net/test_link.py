"""Links: serialisation, propagation delay, drop-tail queue, seeded faults, balanced books."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kplab.net import ETH_OVERHEAD_BYTES, Link
from kplab.packet import TCP, UDP, Packet, ip, ip_length
from kplab.scenario.schema import Faults
from kplab.sim import MS, US, Scheduler, derive_rng

A, B = ip("10.0.0.1"), ip("10.0.0.2")


def _link(faults: Faults | None = None, **kw: int) -> tuple[Scheduler, Link, list[tuple[int, Packet]]]:
    sched = Scheduler(derive_rng(1, "sched"))
    link = Link(sched, "l", derive_rng(1, "link"), faults=faults, **kw)  # type: ignore[arg-type]
    got: list[tuple[int, Packet]] = []
    link.attach(lambda p: got.append((sched.now_ns, p)), lambda p: got.append((sched.now_ns, p)))
    return sched, link, got


def _udp(n: int, length: int = 972) -> Packet:
    return Packet(A, B, UDP, 1000, 2000, length=length, uid=n)


def test_serialisation_and_delay() -> None:
    sched, link, got = _link(rate_bps=8_000_000, delay_ns=MS)  # 1 byte per microsecond
    for n in range(3):
        link.send_from_a(_udp(n))
    sched.run()
    frame = ip_length(_udp(0)) + ETH_OVERHEAD_BYTES
    assert frame == 1000 + ETH_OVERHEAD_BYTES
    assert [t for t, _ in got] == [MS + (i + 1) * frame * US for i in range(3)]
    assert [p.uid for _, p in got] == [0, 1, 2]


def test_drop_tail_counts_queue_full() -> None:
    sched, link, got = _link(rate_bps=8_000_000, delay_ns=0, queue_packets=5)
    for n in range(8):
        link.send_from_a(_udp(n))
    sched.run()
    assert [p.uid for _, p in got] == [0, 1, 2, 3, 4]
    assert link.a_to_b.stats.dropped == {"queue-full": 3}
    assert link.books_balance()


def test_byte_limited_queue() -> None:
    sched, link, got = _link(rate_bps=8_000_000, delay_ns=0, queue_bytes=2500)
    for n in range(4):
        link.send_from_a(_udp(n))
    sched.run()
    assert len(got) == 2 and link.drops() == {"queue-full": 2}


def test_queue_drains_over_time() -> None:
    sched, link, got = _link(rate_bps=8_000_000, delay_ns=0, queue_packets=1)
    for n in range(3):
        sched.call_at(n * 10 * MS, link.send_from_a, _udp(n))
    sched.run()
    assert len(got) == 3 and not link.drops()


def test_reordering_slow_path_and_duplication() -> None:
    faults = Faults(duplicate=0.2, slow_share=0.3, slow_delay_ns=5 * MS)
    sched, link, got = _link(faults, rate_bps=1_000_000_000, delay_ns=MS)
    for n in range(200):
        sched.call_at(n * 10 * US, link.send_from_a, _udp(n))
    sched.run()
    uids = [p.uid for _, p in got]
    assert len(uids) == 200 + link.a_to_b.stats.duplicated
    assert 20 < link.a_to_b.stats.duplicated < 70
    assert uids != sorted(uids)
    assert set(uids) == set(range(200))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 1000),
    loss=st.floats(0, 1),
    dup=st.floats(0, 1),
    reorder=st.floats(0, 1),
    jitter=st.integers(0, 10 * MS),
    queue=st.integers(1, 50),
    stop_at=st.integers(0, 30 * MS),
)
def test_books_balance_at_any_time(
    seed: int, loss: float, dup: float, reorder: float, jitter: int, queue: int, stop_at: int
) -> None:
    sched = Scheduler(derive_rng(seed, "s"))
    faults = Faults(loss=loss, duplicate=dup, slow_share=reorder, slow_delay_ns=3 * MS, jitter_ns=jitter)
    link = Link(sched, "l", derive_rng(seed, "l"), 100_000_000, MS, queue, faults=faults)
    delivered: list[Packet] = []
    link.attach(delivered.append, delivered.append)
    for n in range(100):
        sched.call_at(n * 50 * US, link.send_from_a, _udp(n))
        sched.call_at(n * 70 * US, link.send_from_b, Packet(B, A, TCP, 80, 1000, length=100, uid=n))
    sched.run(until_ns=stop_at)
    assert link.books_balance()
    sched.run()
    assert link.books_balance()
    stats = [link.a_to_b.stats, link.b_to_a.stats]
    assert all(s.in_flight == 0 for s in stats)
    assert len(delivered) == sum(s.delivered for s in stats)
    assert sum(s.offered + s.duplicated for s in stats) == len(delivered) + sum(
        sum(s.dropped.values()) for s in stats
    )


def test_same_seed_same_fault_pattern() -> None:
    def run() -> list[tuple[int, int]]:
        faults = Faults(loss=0.1, duplicate=0.1, slow_share=0.1, slow_delay_ns=MS, jitter_ns=100 * US)
        sched, link, got = _link(faults, rate_bps=1_000_000_000, delay_ns=MS)
        for n in range(100):
            sched.call_at(n * US, link.send_from_a, _udp(n))
        sched.run()
        return [(t, p.uid) for t, p in got]

    assert run() == run()
