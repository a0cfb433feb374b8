"""Seeded random streams: one independent, reproducible stream per named component.

Each link, host or workload draws from its own stream derived from the run's seed and the
component's name, so adding a component does not shift the random draws of the others.
"""

from __future__ import annotations

import hashlib
import random


def derive_rng(seed: int, name: str) -> random.Random:
    """A `random.Random` seeded from (seed, name); the same pair always gives the same stream."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
