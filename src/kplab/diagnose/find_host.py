"""Findings about the node itself: the kernel era and the conntrack counters."""

from __future__ import annotations

from kplab.diagnose.ctstats import CtSample
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.model import Finding, Severity
from kplab.diagnose.sysctl import CT_COUNT, CT_MAX

PRESSURE = 0.9  # count / max at or above this is "near max"


def kernel_era(inp: Inputs) -> list[Finding]:
    k = inp.kernel
    if k is None:
        return []
    evidence = [f"uname -r: {k.text}"]
    if not k.ignores_old_segments:
        return [
            Finding(
                "kernel-era",
                Severity.WARNING,
                f"Kernel {k.text} is older than 6.1: the classic trigger applies",
                "Before 6.1 every failed TCP window check is INVALID, including old duplicates (a "
                "retransmission "
                "below the window) and overly delayed ACKs: a congested or reordering path is enough to make "
                "a "
                "backend's reply escape reverse NAT.",
                evidence,
                [
                    "Kernels from 6.1 (commit 6e250dcbff1d) IGNORE those segments and NAT them; a DROP rule "
                    "or "
                    "be_liberal=1 is still needed for the other causes."
                ],
                {"major": k.major, "minor": k.minor},
            )
        ]
    return [
        Finding(
            "kernel-era",
            Severity.INFO,
            f"Kernel {k.text} is 6.1 or newer: the classic trigger is ignored",
            "Old duplicates and overly delayed ACKs are IGNOREd (passed with their entry, NATed). Other "
            "causes still "
            "make INVALID: SEQ beyond the receiver's window, an ACK for data conntrack never saw, a lost "
            "entry.",
            evidence,
            [],
            {"major": k.major, "minor": k.minor},
        )
    ]


def _delta(first: CtSample, last: CtSample, name: str) -> int | None:
    a, b = first.get(name), last.get(name)
    return None if a is None or b is None else b - a


def invalid_counter(inp: Inputs) -> list[Finding]:
    samples = inp.ct_samples
    if not samples:
        return []
    first, last = samples[0], samples[-1]
    if len(samples) == 1:
        total = first.get("invalid") or 0
        if total == 0:
            return []
        return [
            Finding(
                "invalid-counter-rising",
                Severity.INFO,
                f"{total} packets counted INVALID (one sample)",
                "conntrack has called packets INVALID since this namespace started; one sample cannot say "
                "whether "
                "it is still happening. Take a second sample a minute later (--conntrack-stats twice).",
                [f"{first.file}: invalid = {total} (sum over {first.cpus} CPUs, {first.format})"],
                ["Run the same command again later and pass both files."],
                {"invalid": total},
            )
        ]
    delta = _delta(first, last, "invalid")
    if delta is None or delta <= 0:
        return []
    rate = (
        f", {delta / inp.sample_interval_s:.2f}/s over {inp.sample_interval_s:g} s"
        if inp.sample_interval_s
        else ""
    )
    return [
        Finding(
            "invalid-counter-rising",
            Severity.WARNING,
            f"INVALID counter rose by {delta}{rate}",
            "conntrack is marking packets INVALID right now. Without a DROP rule or be_liberal each Service "
            "reply "
            "among them can escape reverse NAT; with nf_conntrack_log_invalid=6 the kernel logs why.",
            [
                f"{first.file}: invalid = {first.get('invalid')}",
                f"{last.file}: invalid = {last.get('invalid')}",
                f"delta: +{delta}{rate}",
            ],
            [
                "See invalid-not-dropped / mitigated-* for whether these packets are stopped.",
                "To see the reasons: sysctl -w net.netfilter.nf_conntrack_log_invalid=6 (then dmesg).",
            ],
            {"delta": delta, "interval_s": inp.sample_interval_s},
        )
    ]


def table_pressure(inp: Inputs) -> list[Finding]:
    evidence: list[str] = []
    severity = Severity.WARNING
    last = inp.ct_samples[-1] if inp.ct_samples else None
    count = last.entries if last is not None and last.entries is not None else inp.sysctl(CT_COUNT)
    maximum = inp.sysctl(CT_MAX)
    if count is not None and maximum and count >= PRESSURE * maximum:
        evidence.append(f"entries {count} of nf_conntrack_max {maximum} ({100 * count / maximum:.0f}%)")
    for name in ("drop", "early_drop"):
        if len(inp.ct_samples) >= 2:
            delta = _delta(inp.ct_samples[0], inp.ct_samples[-1], name)
            if delta:
                evidence.append(f"{name}: +{delta} between the samples")
                severity = Severity.CRITICAL if name == "drop" else severity
        elif last is not None and last.get(name):
            evidence.append(f"{last.file}: {name} = {last.get(name)} since start (one sample)")
    if not evidence:
        return []
    return [
        Finding(
            "table-pressure",
            severity,
            "The conntrack table is (or was) full",
            "When the table is full new connections' packets are dropped ('table full, dropping packet'), "
            "early_drop "
            "evicts unassured entries, and a connection whose entry vanished stalls, then is picked up "
            "un-NATed and "
            "reset (loose=1).",
            evidence,
            [
                "Raise nf_conntrack_max (kube-proxy: conntrack.maxPerCore / conntrack.min) and the hash "
                "size, or shorten "
                "idle timeouts; find who fills the table with `conntrack -L | awk ...` by source."
            ],
            {"entries": count, "max": maximum},
        )
    ]
