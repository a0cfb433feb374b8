"""The discrete-event core: a deterministic scheduler in integer nanoseconds and seeded RNG streams."""

from kplab.sim.rng import derive_rng
from kplab.sim.scheduler import MS, NS, SECOND, US, Scheduler, SimulationError, Timer

__all__ = ["MS", "NS", "SECOND", "US", "Scheduler", "SimulationError", "Timer", "derive_rng"]
