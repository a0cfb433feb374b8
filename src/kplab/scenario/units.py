"""Quantities with units, as scenario files write them: `1Gbit`, `10MB`, `250us`, `2s`."""

from __future__ import annotations

import re

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
_SIZE = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_TIME = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}


def _parse(value: object, table: dict[str, int], what: str, default_unit: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a {what}, got {value!r}")
    if isinstance(value, int | float):
        return int(value * table[default_unit])
    if not isinstance(value, str):
        raise ValueError(f"expected a {what}, got {value!r}")
    m = _NUM.match(value)
    if not m or m.group(2).lower() not in table:
        units = ", ".join(u for u in table if u)
        raise ValueError(
            f"expected a {what} like '10{next(iter(u for u in table if u))}' (units: {units}), got {value!r}"
        )
    return int(float(m.group(1)) * table[m.group(2).lower()])


def rate_bps(value: object) -> int:
    """`1Gbit` -> 1_000_000_000 (bits per second). A bare number is bits per second."""
    return _parse(value, _RATE, "rate", "bit")


def size_bytes(value: object) -> int:
    """`10MB` -> 10_000_000, `1MiB` -> 1_048_576. A bare number is bytes."""
    return _parse(value, _SIZE, "size", "")


def duration_ns(value: object) -> int:
    """`250us` -> 250_000 ns. A bare number is seconds."""
    return _parse(value, _TIME, "duration", "s")
