"""Run the four variants of a scenario with one seed and collect what `kplab repro` reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kplab.net.run import run
from kplab.repro.variants import VARIANTS, measure, variant
from kplab.scenario.schema import Scenario

Progress = Callable[[str, int, int], None]  # (variant, now_ns, until_ns)


def run_variants(
    scenario: Scenario,
    names: tuple[str, ...] = VARIANTS,
    *,
    pcap_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {}
    sim_seconds = 0.0
    packets = 0
    for name in names:
        tick = (lambda now, until, n=name: progress(n, now, until)) if progress else None
        cluster, summary = run(variant(scenario, name), pcap_dir=pcap_dir / name if pcap_dir else None,
                               progress=tick)  # fmt: skip
        results[name] = measure(cluster, summary).as_json()
        sim_seconds = max(sim_seconds, summary["sim_seconds"])
        packets += summary["packets"]
    return {
        "scenario": scenario.name,
        "seed": scenario.seed,
        "sim_seconds": sim_seconds,
        "packets": packets,
        "variants": results,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
