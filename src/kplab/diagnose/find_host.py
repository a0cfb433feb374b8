"""Findings about the node itself: the kernel era and the conntrack counters."""

from __future__ import annotations

from kplab.diagnose.ctstats import CtSample
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.model import Finding, Severity
from kplab.diagnose.sysctl import CT_COUNT, CT_MAX, ESTABLISHED_TIMEOUT

PRESSURE = 0.9  # count / max at or above this is "near max"
KUBE_PROXY_ESTABLISHED_S = 86400  # kube-proxy's conntrack.tcpEstablishedTimeout default (24h)

MEANS_SHORT_TIMEOUT = (
    "conntrack forgets an ESTABLISHED connection idle for longer than this: a long-lived flow that "
    "goes quiet "
    "(connection pools, gRPC/HTTP2, websockets, replication) loses its entry. With loose=1 (the default) the "
    "server's next packet is picked up as a new flow without the Service NAT, leaves from the pod IP, the "
    "client answers with a RST and the server's connection is reset (see loose-pickup-risk); with loose=0 "
    "the packet is INVALID and the flow stalls. No DROP rule or be_liberal prevents it."
)
FIX_SHORT_TIMEOUT = (
    f"Raise it to at least {KUBE_PROXY_ESTABLISHED_S} s (kube-proxy's conntrack.tcpEstablishedTimeout "
    f"default; "
    "the kernel's is 432000): sysctl -w net.netfilter.nf_conntrack_tcp_timeout_established=86400, persisted "
    "in /etc/sysctl.d",
    "Or keep idle connections alive below the timeout (TCP keepalive, application pings).",
)
MEANS_NOT_A_PAIR = (
    "Counters only grow while a network namespace lives. Here some went down between the samples: they do "
    "not come from the same boot, host and CPU set (a reboot, another node, a different CPU count), so they "
    "are not a before/after pair and no rate or difference is computed from them."
)

MEANS_OLD_KERNEL = (
    "Before 6.1 every failed TCP window check is INVALID, including old duplicates (a retransmission below "
    "the window) and overly delayed ACKs: a congested or reordering path is enough to make a backend's reply "
    "escape reverse NAT."
)
FIX_OLD_KERNEL = (
    "Kernels from 6.1 (commit 6e250dcbff1d) IGNORE those segments and NAT them; a DROP rule or be_liberal=1 "
    "is still needed for the other causes."
)
MEANS_NEW_KERNEL = (
    "Old duplicates and overly delayed ACKs are IGNOREd (passed with their entry, NATed). Other causes still "
    "make INVALID: SEQ beyond the receiver's window, an ACK for data conntrack never saw, a lost entry."
)
MEANS_ONE_SAMPLE = (
    "conntrack has called packets INVALID since this namespace started; one sample cannot say whether it is "
    "still happening. Take a second sample a minute later (--conntrack-stats twice)."
)
MEANS_RISING = (
    "conntrack is marking packets INVALID right now. Without a DROP rule or be_liberal each Service reply "
    "among them can escape reverse NAT; with nf_conntrack_log_invalid=6 the kernel logs why."
)
FIX_RISING = (
    "See invalid-not-dropped / mitigated-* for whether these packets are stopped.",
    "To see the reasons: sysctl -w net.netfilter.nf_conntrack_log_invalid=6 (then dmesg).",
)
MEANS_PRESSURE = (
    "When the table is full the packets of new connections are dropped ('table full, dropping packet'), "
    "early_drop evicts unassured entries, and a connection whose entry vanished stalls, then is picked up "
    "un-NATed and reset (loose=1)."
)
FIX_PRESSURE = (
    "Raise nf_conntrack_max (kube-proxy: conntrack.maxPerCore / conntrack.min) and the hash size, or shorten "
    "idle timeouts; see who fills the table with `conntrack -L`."
)


def kernel_era(inp: Inputs) -> list[Finding]:
    k = inp.kernel
    if k is None:
        return []
    evidence = [f"uname -r: {k.text}"]
    data = {"major": k.major, "minor": k.minor}
    if not k.ignores_old_segments:
        title = f"Kernel {k.text} is older than 6.1: the classic trigger applies"
        return [
            Finding("kernel-era", Severity.WARNING, title, MEANS_OLD_KERNEL, evidence, [FIX_OLD_KERNEL], data)
        ]
    title = f"Kernel {k.text} is 6.1 or newer: the classic trigger is ignored"
    return [Finding("kernel-era", Severity.INFO, title, MEANS_NEW_KERNEL, evidence, [], data)]


def established_timeout(inp: Inputs) -> list[Finding]:
    value = inp.sysctl(ESTABLISHED_TIMEOUT)
    if value is None or value >= KUBE_PROXY_ESTABLISHED_S or inp.sysctls is None:
        return []
    loose, loose_where = inp.loose()
    evidence = [inp.sysctls.where(ESTABLISHED_TIMEOUT), loose_where]
    title = f"ESTABLISHED connections idle for {value} s lose their conntrack entry"
    severity = Severity.WARNING
    data = {"timeout_s": value, "loose": loose, "kube_proxy_default_s": KUBE_PROXY_ESTABLISHED_S}
    return [Finding("established-timeout-short", severity, title, MEANS_SHORT_TIMEOUT, evidence,
                    [*FIX_SHORT_TIMEOUT], data)]  # fmt: skip


def went_down(inp: Inputs) -> list[str]:
    """The counters that are lower in the last sample than in the first (empty: a real pair)."""
    if len(inp.ct_samples) < 2:
        return []
    first, last = inp.ct_samples[0], inp.ct_samples[-1]
    return [n for n in sorted(first.totals) if n in last.totals and last.totals[n] < first.totals[n]]


def samples_pair(inp: Inputs) -> list[Finding]:
    down = went_down(inp)
    if not down:
        return []
    first, last = inp.ct_samples[0], inp.ct_samples[-1]
    evidence = [f"{first.file} -> {last.file}: {n} {first.totals[n]} -> {last.totals[n]}" for n in down]
    if first.cpus != last.cpus:
        evidence.append(f"{first.file}: {first.cpus} CPUs; {last.file}: {last.cpus} CPUs")
    title = "The conntrack counter samples are not a before/after pair (counters went down)"
    fix = ["Take both samples on the same node, a minute apart, without a reboot in between."]
    return [Finding("samples-not-a-pair", Severity.INFO, title, MEANS_NOT_A_PAIR, evidence, fix,
                    {"went_down": down})]  # fmt: skip


def _delta(first: CtSample, last: CtSample, name: str) -> int | None:
    a, b = first.get(name), last.get(name)
    return None if a is None or b is None else b - a


def invalid_counter(inp: Inputs) -> list[Finding]:
    samples = inp.ct_samples
    if went_down(inp):
        return []  # samples-not-a-pair says why
    if len(samples) == 1:
        return _one_sample(samples[0])
    if not samples:
        return []
    first, last = samples[0], samples[-1]
    delta = _delta(first, last, "invalid")
    if delta is None or delta <= 0:
        return []
    interval = inp.sample_interval_s
    rate = f", {delta / interval:.2f}/s over {interval:g} s" if interval else ""
    evidence = [
        f"{first.file}: invalid = {first.get('invalid')}",
        f"{last.file}: invalid = {last.get('invalid')}",
        f"delta: +{delta}{rate}",
    ]
    title = f"INVALID counter rose by {delta}{rate}"
    data = {"delta": delta, "interval_s": interval}
    return [
        Finding(
            "invalid-counter-rising", Severity.WARNING, title, MEANS_RISING, evidence, [*FIX_RISING], data
        )
    ]


def _one_sample(sample: CtSample) -> list[Finding]:
    total = sample.get("invalid") or 0
    if total == 0:
        return []
    evidence = [f"{sample.file}: invalid = {total} (sum over {sample.cpus} CPUs, {sample.format})"]
    fix = ["Run the same command again later and pass both files."]
    title = f"{total} packets counted INVALID (one sample)"
    return [
        Finding(
            "invalid-counter-rising",
            Severity.INFO,
            title,
            MEANS_ONE_SAMPLE,
            evidence,
            fix,
            {"invalid": total},
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
    pair = len(inp.ct_samples) >= 2 and not went_down(inp)
    for name in ("drop", "early_drop"):
        if pair:
            delta = _delta(inp.ct_samples[0], inp.ct_samples[-1], name)
            if delta:
                evidence.append(f"{name}: +{delta} between the samples")
                severity = Severity.CRITICAL if name == "drop" else severity
        elif last is not None and last.get(name):
            evidence.append(f"{last.file}: {name} = {last.get(name)} since start (one sample)")
    if not evidence:
        return []
    title = "The conntrack table is (or was) full"
    data = {"entries": count, "max": maximum}
    return [Finding("table-pressure", severity, title, MEANS_PRESSURE, evidence, [FIX_PRESSURE], data)]
