"""Quantities with units, as scenario files write them: `1Gbit`, `10MB`, `250us`, `2s`."""

from __future__ import annotations

import math
import re

from kplab.untrusted import shown

_NUM = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")

_RATE = {
    "bit": 1,
    "kbit": 10**3,
    "mbit": 10**6,
    "gbit": 10**9,
    "bps": 1,
    "kbps": 10**3,
    "mbps": 10**6,
    "gbps": 10**9,
}
_SIZE = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_TIME = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
# The largest value of each kind a scenario may write: far beyond anything that runs, small enough
# that no arithmetic on it overflows.
_UNIT = {"rate": "bit/s", "size": "bytes", "duration": "ns"}
MAX_RATE_BPS = 10**13  # 10 Tbit/s
MAX_SIZE_BYTES = 10**13  # 10 TB
MAX_DURATION_NS = 10**7 * 10**9  # 115 days


def _parse(value: object, table: dict[str, int], what: str, default_unit: str, largest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a {what}, got {shown(value)}")
    if isinstance(value, str):
        m = _NUM.match(value[:100])
        if not m or m.group(2).lower() not in table:
            units = ", ".join(u for u in table if u)
            example = next(iter(u for u in table if u))
            raise ValueError(f"expected a {what} like '10{example}' (units: {units}), got {shown(value)}")
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        number, unit = float(value) if abs(value) < 10**300 else math.inf, default_unit
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"expected a non-negative, finite {what}, got {shown(value)}")
    result = number * table[unit]
    if result > largest:
        raise ValueError(f"{shown(value)} is larger than kplab takes for a {what} ({largest} {_UNIT[what]})")
    return int(result)


def rate_bps(value: object) -> int:
    """`1Gbit` -> 1_000_000_000 (bits per second). A bare number is bits per second."""
    return _parse(value, _RATE, "rate", "bit", MAX_RATE_BPS)


def size_bytes(value: object) -> int:
    """`10MB` -> 10_000_000, `1MiB` -> 1_048_576. A bare number is bytes."""
    return _parse(value, _SIZE, "size", "", MAX_SIZE_BYTES)


def duration_ns(value: object) -> int:
    """`250us` -> 250_000 ns. A bare number is seconds."""
    return _parse(value, _TIME, "duration", "s", MAX_DURATION_NS)
