"""One run of a sweep: a cell's scenario, one variant, one seed; its key and what it measures.

A run is exactly `kplab repro --fix VARIANT --seed S -f SCENARIO` (`kplab.repro.run.run_variants`
with one variant; `as_is` is the scenario as written, what `kplab run` runs), so the numbers are
the same as those commands print.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kplab
from kplab import __version__
from kplab.repro.run import run_variants
from kplab.scenario.schema import Scenario

# The measures of one run, in the order of `kplab sweep -o json` (a subset of `kplab repro`'s).
MEASURES = (
    "completed",
    "reset",
    "timed_out",
    "server_resets",
    "client_rsts",
    "unnated_escapes",
    "invalid_by_reason",
    "packets",
    "sim_seconds",
)


@dataclass(frozen=True, slots=True)
class RunSpec:
    cell: int  # index in the grid's cells
    scenario: Scenario  # the cell's scenario (variant not applied, seed not set)
    variant: str
    seed: int
    key: str


def canonical(scenario: Scenario) -> str:
    """The scenario's content, independent of its file, formatting and seed field."""
    fields = dataclasses.asdict(dataclasses.replace(scenario, seed=0, source=""))
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def code_identity(package: Path | None = None) -> str:
    """What the result of a run depends on besides its inputs: kplab's version and a hash of its
    Python sources (an edit that changes the emulator must not be answered from the cache).
    `package`: another copy of the package's directory (default: this one, hashed once per process)."""
    if package is None:
        return _this_code()
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(b"\0" + path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


@functools.cache
def _this_code() -> str:
    return code_identity(Path(kplab.__file__).parent)


def run_key(scenario: Scenario, variant: str, seed: int) -> str:
    """The cache key: (the scenario's canonical content, the variant, the seed, kplab's code)."""
    ident = {"scenario": canonical(scenario), "variant": variant, "seed": seed, "kplab": code_identity()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def execute(scenario: Scenario, variant: str, seed: int) -> dict[str, Any]:
    """Run it: the repro code path with one variant and this seed."""
    result = run_variants(dataclasses.replace(scenario, seed=seed), (variant,))
    measured = result["variants"][variant]
    return {k: measured[k] for k in MEASURES}
