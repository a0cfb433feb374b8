"""The doctor's plain data: severities, findings and the report they make."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that a CI gate can compare: info < warning < critical."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (info, warning, critical)") from None


@dataclass(slots=True)
class Finding:
    """One diagnosis: what was seen (evidence lines that point at files, lines, packets), what it
    means, and what fixes it. `data` carries the same facts in machine-readable form."""

    id: str
    severity: Severity
    title: str
    meaning: str
    evidence: list[str]
    fix: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.label,
            "title": self.title,
            "meaning": self.meaning,
            "evidence": list(self.evidence),
            "fix": list(self.fix),
            "data": self.data,
        }


@dataclass(slots=True)
class Report:
    """All findings (most severe first) and a description of every input that was read."""

    findings: list[Finding]
    inputs: dict[str, Any]

    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    def get(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def exit_code(self, fail_on: Severity) -> int:
        """0 healthy, 1 when a finding is at or above `fail_on`."""
        worst = self.worst()
        return 1 if worst is not None and worst >= fail_on else 0

    def as_json(self) -> dict[str, Any]:
        return {"findings": [f.as_json() for f in self.findings], "inputs": self.inputs}
