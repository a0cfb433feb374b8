from __future__ import annotations

import random

import pytest

from kplab.sim import MS, Scheduler, SimulationError, derive_rng


def test_events_run_in_time_then_scheduling_order() -> None:
    sched = Scheduler(random.Random(1))
    seen: list[str] = []
    sched.call_at(5, seen.append, "b5")
    sched.call_at(3, seen.append, "a3")
    sched.call_at(5, seen.append, "c5")
    sched.call_at(3, seen.append, "d3")
    sched.run()
    assert seen == ["a3", "d3", "b5", "c5"]
    assert sched.now_ns == 5


def test_callbacks_can_schedule_and_time_advances() -> None:
    sched = Scheduler(random.Random(1))
    times: list[int] = []

    def tick(n: int) -> None:
        times.append(sched.now_ns)
        if n:
            sched.call_later(MS, tick, n - 1)

    sched.call_at(0, tick, 3)
    assert sched.run() == 4
    assert times == [0, MS, 2 * MS, 3 * MS]


def test_until_stops_and_sets_clock() -> None:
    sched = Scheduler(random.Random(1))
    seen: list[int] = []
    for t in (10, 20, 30):
        sched.call_at(t, seen.append, t)
    sched.run(until_ns=20)
    assert seen == [10, 20]
    assert sched.now_ns == 20
    sched.run(until_ns=100)
    assert seen == [10, 20, 30]
    assert sched.now_ns == 100


def test_cancelled_timer_does_not_run() -> None:
    sched = Scheduler(random.Random(1))
    seen: list[str] = []
    timer = sched.timer_at(10, seen.append, "cancelled")
    sched.timer_at(10, seen.append, "kept")
    timer.cancel()
    sched.run()
    assert seen == ["kept"]


def test_past_scheduling_is_refused() -> None:
    sched = Scheduler(random.Random(1))
    sched.call_at(10, lambda: None)
    sched.run()
    with pytest.raises(ValueError):
        sched.call_at(5, lambda: None)


def test_exception_stops_the_run_with_time() -> None:
    sched = Scheduler(random.Random(1))
    seen: list[int] = []

    def boom() -> None:
        raise KeyError("x")

    sched.call_at(1, seen.append, 1)
    sched.call_at(2, boom)
    sched.call_at(3, seen.append, 3)
    with pytest.raises(SimulationError) as info:
        sched.run()
    assert info.value.time_ns == 2
    assert seen == [1]


def _random_workload(seed: int) -> list[tuple[int, str]]:
    trace: list[tuple[int, str]] = []
    sched = Scheduler(derive_rng(seed, "sched"), trace)

    def spawn(depth: int) -> None:
        if depth < 6:
            for _ in range(2):
                sched.call_later(sched.rng.randrange(0, 3), spawn, depth + 1)

    sched.call_at(0, spawn, 0)
    sched.run()
    return trace


def test_same_seed_same_trace_different_seed_differs() -> None:
    assert _random_workload(7) == _random_workload(7)
    assert len(_random_workload(7)) == 127
    times = {tuple(t for t, _ in _random_workload(s)) for s in range(5)}
    assert len(times) > 1


def test_derived_streams_are_stable_and_independent() -> None:
    a1 = [derive_rng(3, "link-a").random() for _ in range(3)]
    a2 = [derive_rng(3, "link-a").random() for _ in range(3)]
    b = [derive_rng(3, "link-b").random() for _ in range(3)]
    assert a1 == a2
    assert a1 != b
