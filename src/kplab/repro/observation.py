"""What one run of a scenario variant showed, whichever engine ran it.

The emulator (`repro.variants.measure`) and the real-kernel lab (`lab.repro.summarise`) both
describe a run as an `Observation`: how the downloads ended, the resets on both sides, the INVALID
verdicts by reason, the packets that escaped the reverse NAT. Its JSON is the per-variant object of
`kplab repro -o json` and `kplab lab repro -o json` (the lab adds its raw counters under "lab"),
so the two engines cannot drift apart in what they report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

ENDINGS = ("completed", "reset", "timed out")  # download outcomes counted on their own; others: "other"


@dataclass(frozen=True, slots=True)
class Observation:
    completed: int  # downloads that received the whole file
    reset: int  # downloads that ended in ECONNRESET
    timed_out: int  # downloads that gave up
    other: int  # downloads that ended any other way (still running at the end, refused, ...)
    server_resets: int  # server connections a RST killed
    client_rsts: int  # RSTs the client pods sent
    invalid_by_reason: dict[str, int]  # conntrack INVALID verdicts on every node, by kernel reason
    unnated_escapes: int  # packets that left a node with a backend's own address (reverse NAT missed)
    packets: int  # packets the nodes handled
    sim_seconds: float  # how long the run lasted (simulated, or measured on the real kernel)

    @classmethod
    def from_outcomes(
        cls,
        outcomes: Mapping[str, int],
        *,
        server_resets: int,
        client_rsts: int,
        invalid_by_reason: Mapping[str, int],
        unnated_escapes: int,
        packets: int,
        sim_seconds: float,
    ) -> Observation:
        """`outcomes`: how many downloads ended which way ("completed", "reset", "timed out", ...)."""
        completed, reset, timed_out = (outcomes.get(k, 0) for k in ENDINGS)
        return cls(
            completed,
            reset,
            timed_out,
            sum(n for k, n in outcomes.items() if k not in ENDINGS),
            server_resets,
            client_rsts,
            dict(sorted(invalid_by_reason.items())),
            unnated_escapes,
            packets,
            sim_seconds,
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
