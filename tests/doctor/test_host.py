"""Kernel era, conntrack counters (real /proc and `conntrack -S` samples) and table pressure."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplab.diagnose import Severity
from kplab.diagnose.ctstats import parse as parse_stats
from kplab.diagnose.kernel import parse_release

from .helpers import DATA, report, sysctl_file

BEFORE = {"proc": str(DATA / "proc-stat-before.txt"), "S": str(DATA / "conntrack-S-before.txt")}
AFTER = {"proc": str(DATA / "proc-stat-after.txt"), "S": str(DATA / "conntrack-S-after.txt")}


@pytest.mark.parametrize(
    ("release", "severity"),
    [("4.19.0-27-amd64", Severity.WARNING), ("5.4.0-150-generic", Severity.WARNING),
     ("6.0.19", Severity.WARNING), ("6.1.0-13-amd64", Severity.INFO), ("6.18.44-fc-v669", Severity.INFO)],
)  # fmt: skip
def test_kernel_era(release: str, severity: Severity) -> None:
    r = report(uname=release)
    assert r.ids() == ["kernel-era"]
    era = r.get("kernel-era")
    assert era is not None and era.severity is severity and release in era.evidence[0]


def test_both_counter_formats_read_the_same_moment_alike() -> None:
    proc = parse_stats((DATA / "proc-stat-after.txt").read_text(), "p")
    conntrack_s = parse_stats((DATA / "conntrack-S-after.txt").read_text(), "s")
    assert proc.cpus == conntrack_s.cpus >= 1
    assert proc.get("invalid") == conntrack_s.get("invalid") == 50  # make_data.py sent 50 INVALID packets
    shared = set(proc.totals) & set(conntrack_s.totals)
    assert {"found", "invalid", "drop", "early_drop", "icmp_error", "clashres", "chainlength"} <= shared
    assert all(proc.totals[k] == conntrack_s.totals[k] for k in shared)


@pytest.mark.parametrize("before", ["proc", "S"])
@pytest.mark.parametrize("after", ["proc", "S"])
def test_invalid_counter_rising_from_two_samples(before: str, after: str) -> None:
    r = report(conntrack_stats=[BEFORE[before], AFTER[after]], stats_interval_s=25.0)
    assert r.ids() == ["invalid-counter-rising"]
    rising = r.get("invalid-counter-rising")
    assert rising is not None and rising.severity is Severity.WARNING
    assert rising.data == {"delta": 50, "interval_s": 25.0}
    assert "2.00/s" in rising.title


def test_single_sample_says_what_it_can() -> None:
    assert report(conntrack_stats=[BEFORE["proc"]]).ids() == []  # nothing counted yet
    one = report(conntrack_stats=[AFTER["S"]]).get("invalid-counter-rising")
    assert one is not None and one.severity is Severity.INFO and "one sample" in one.title


def test_flat_counter_is_not_rising() -> None:
    assert report(conntrack_stats=[AFTER["proc"], AFTER["S"]]).ids() == []


def test_table_pressure_near_max(tmp_path: Path) -> None:
    near = sysctl_file(tmp_path, nf_conntrack_count=950, nf_conntrack_max=1000)
    found = report(sysctl=near).get("table-pressure")
    assert found is not None and found.severity is Severity.WARNING and "95%" in found.evidence[0]
    assert report(sysctl=sysctl_file(tmp_path, "b", nf_conntrack_count=10, nf_conntrack_max=1000)).ids() == []


def test_table_drops_between_samples_are_critical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("cpu=0 found=0 invalid=0 drop=3 early_drop=0\ncpu=1 found=0 invalid=0 drop=0 early_drop=0\n")
    b.write_text("cpu=0 found=0 invalid=0 drop=9 early_drop=2\ncpu=1 found=0 invalid=0 drop=1 early_drop=0\n")
    found = report(conntrack_stats=[str(a), str(b)]).get("table-pressure")
    assert found is not None and found.severity is Severity.CRITICAL
    assert found.evidence == ["drop: +7 between the samples", "early_drop: +2 between the samples"]


def test_kernel_release_parsing() -> None:
    k = parse_release("6.1.0-13-amd64")
    assert (k.major, k.minor, k.ignores_old_segments) == (6, 1, True)
    assert not parse_release("5.15.0-91-generic").ignores_old_segments
