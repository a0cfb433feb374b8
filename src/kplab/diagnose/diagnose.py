"""`diagnose(inputs) -> Report`: every finding family over whatever inputs were given."""

from __future__ import annotations

from kplab.diagnose.find_dump import dump_findings
from kplab.diagnose.find_host import (
    established_timeout,
    invalid_counter,
    kernel_era,
    samples_pair,
    table_pressure,
)
from kplab.diagnose.find_nat import nat_findings
from kplab.diagnose.find_pcap import pcap_findings
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.model import Finding, Report

FAMILIES = (
    dump_findings,
    nat_findings,
    kernel_era,
    established_timeout,
    samples_pair,
    invalid_counter,
    table_pressure,
    pcap_findings,
)


def merge(findings: list[Finding]) -> list[Finding]:
    """One finding per id (iptables and nftables may both say it): evidence joined, worst severity."""
    by_id: dict[str, Finding] = {}
    for f in findings:
        seen = by_id.get(f.id)
        if seen is None:
            by_id[f.id] = f
        else:
            seen.evidence += [e for e in f.evidence if e not in seen.evidence]
            seen.fix += [x for x in f.fix if x not in seen.fix]
            seen.severity = max(seen.severity, f.severity)
    return sorted(by_id.values(), key=lambda f: -f.severity)


def diagnose(inputs: Inputs) -> Report:
    findings = [f for family in FAMILIES for f in family(inputs)]
    return Report(merge(findings), inputs.describe())
