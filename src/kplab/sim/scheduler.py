"""A deterministic discrete-event scheduler (the whole of it).

Theory of operation: the scheduler is a heap of events (`Timer`: time, seq, callback, args), ordered
by `(time_ns, seq)`. `seq` is a counter that increases with every scheduling call, so two events at
the same nanosecond run in the order they were scheduled: a run depends only on its inputs and seed,
never on hashing or on the wall clock. Time is an integer number of nanoseconds since the start of
the run, a fixed-width `i64` (compiled, the heap compares unboxed integers; one object per event).

Cancelling is lazy: `Timer.cancel()` marks the entry and the loop skips it when it surfaces.
An exception raised by a callback stops the run and propagates (wrapped in `SimulationError`
with the simulated time), instead of being lost.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final

from mypy_extensions import i64, mypyc_attr

NS: Final = 1
US: Final = 1_000
MS: Final = 1_000_000
SECOND: Final = 1_000_000_000


@mypyc_attr(native_class=False)  # an exception subclass: mypyc compiles it as a plain class
class SimulationError(RuntimeError):
    """A callback raised; the run stopped at `time_ns`."""

    def __init__(self, time_ns: int, callback: str, cause: BaseException) -> None:
        super().__init__(f"at t={time_ns} ns in {callback}: {cause!r}")
        self.time_ns = time_ns
        self.callback = callback


class Timer:
    """One scheduled event, ordered by (time, scheduling order); `cancel()` makes the scheduler skip it."""

    __slots__ = ("args", "callback", "cancelled", "seq", "time_ns")

    def __init__(self, time_ns: i64, seq: i64, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.time_ns = time_ns
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False

    def __lt__(self, other: Timer) -> bool:
        t = self.time_ns
        o = other.time_ns
        return t < o or (t == o and self.seq < other.seq)

    def cancel(self) -> None:
        self.cancelled = True


def _callback_name(callback: Callable[..., Any]) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


class Scheduler:
    """Runs callbacks in (time, scheduling order). `rng` is the run's seeded random source.

    `trace`, when a list is given, receives `(time_ns, callback qualname)` for every event run:
    two runs with the same seed produce equal traces.
    """

    __slots__ = ("_heap", "_seq", "_stopped", "events_run", "now_ns", "rng", "trace")

    def __init__(self, rng: random.Random, trace: list[tuple[int, str]] | None = None) -> None:
        self.now_ns: i64 = 0
        self.rng = rng
        self.trace = trace
        self.events_run = 0
        self._heap: list[Timer] = []
        self._seq: i64 = 0
        self._stopped = False

    def call_at(self, time_ns: i64, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` at `time_ns` (not before now)."""
        self._push(time_ns, callback, args)

    def call_later(self, delay_ns: i64, callback: Callable[..., Any], *args: Any) -> None:
        self._push(self.now_ns + delay_ns, callback, args)

    def timer_at(self, time_ns: i64, callback: Callable[..., Any], *args: Any) -> Timer:
        """Like `call_at`, and returns the `Timer`, which can be cancelled."""
        return self._push(time_ns, callback, args)

    def _push(self, time_ns: i64, callback: Callable[..., Any], args: tuple[Any, ...]) -> Timer:
        if time_ns < self.now_ns:
            raise ValueError(f"cannot schedule in the past: {time_ns} < now {self.now_ns}")
        self._seq += 1
        timer = Timer(time_ns, self._seq, callback, args)
        heappush(self._heap, timer)
        return timer

    def stop(self) -> None:
        """Make `run()` return after the current event."""
        self._stopped = True

    @property
    def pending(self) -> int:
        return len(self._heap)

    def next_time_ns(self) -> int | None:
        return self._heap[0].time_ns if self._heap else None

    def run(self, until_ns: int | None = None, max_events: int | None = None) -> int:
        """Run events up to and including `until_ns` (all events if None); returns events run.

        The clock ends at `until_ns` when given (even if the heap ran dry earlier).
        """
        heap = self._heap
        pop = heappop
        trace = self.trace
        budget = -1 if max_events is None else max_events
        ran = 0
        self._stopped = False
        while heap and budget != 0 and not self._stopped:
            if until_ns is not None and heap[0].time_ns > until_ns:
                break
            event = pop(heap)
            if event.cancelled:
                continue
            time_ns = event.time_ns
            callback = event.callback
            self.now_ns = time_ns
            if trace is not None:
                trace.append((time_ns, _callback_name(callback)))
            try:
                callback(*event.args)
            except Exception as exc:
                raise SimulationError(time_ns, _callback_name(callback), exc) from exc
            ran += 1
            budget -= 1
        if until_ns is not None and not self._stopped and (not heap or heap[0].time_ns > until_ns):
            self.now_ns = max(self.now_ns, until_ns)
        self.events_run += ran
        return ran
