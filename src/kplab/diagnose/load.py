"""Build the doctor's Inputs from files named on the command line (each optional)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kplab.diagnose import capture, ctstats, kpconfig, nft, rules, sysctl
from kplab.diagnose.flows import Cidr
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.kernel import parse_release
from kplab.errors import InputError
from kplab.packet import parse_cidr
from kplab.untrusted import read_bytes, read_text

MAX_INTERVAL_S = 366 * 86400  # a year: the two samples' counters are 32-bit and wrap anyway


@dataclass(slots=True)
class Sources:
    iptables_save: str | None = None  # a path or "-" for stdin
    nft: str | None = None
    sysctl: str | None = None
    conntrack_stats: list[str] = field(default_factory=list)
    stats_interval_s: float | None = None
    uname: str | None = None
    kube_proxy_config: str | None = None
    pcaps: list[str] = field(default_factory=list)
    service_cidrs: list[str] = field(default_factory=list)
    pod_cidrs: list[str] = field(default_factory=list)


def cidrs(texts: list[str], option: str) -> list[Cidr]:
    out = []
    for text in texts:
        for part in text.split(","):
            try:
                out.append(parse_cidr(part.strip()))
            except ValueError:
                raise InputError(f"{option}: not a CIDR like 10.96.0.0/12: {part.strip()!r}") from None
    return out


def load(src: Sources) -> Inputs:
    inp = Inputs()
    if src.iptables_save:
        name = "<stdin>" if src.iptables_save == "-" else src.iptables_save
        inp.rules = rules.analyse(read_text(src.iptables_save), name)
    if src.nft:
        inp.nft = nft.analyse(read_text(src.nft), src.nft)
    if src.sysctl:
        inp.sysctls = sysctl.parse(read_text(src.sysctl), src.sysctl)
        inp.sysctl(sysctl.BE_LIBERAL), inp.sysctl(sysctl.LOOSE)  # bad values are bad input now, not later
    if len(src.conntrack_stats) > 2:
        raise InputError(
            f"--conntrack-stats: give one sample, or two (before and after), not {len(src.conntrack_stats)}"
        )
    inp.ct_samples = [ctstats.parse(read_text(p), p) for p in src.conntrack_stats]
    interval = src.stats_interval_s
    if interval is not None and not (math.isfinite(interval) and 0 < interval <= MAX_INTERVAL_S):
        raise InputError(f"--stats-interval: expected seconds in (0, {MAX_INTERVAL_S}], got {interval}")
    inp.sample_interval_s = src.stats_interval_s
    if src.uname is not None:
        inp.kernel = parse_release(src.uname)
    if src.kube_proxy_config:
        inp.kube_proxy = kpconfig.parse(read_text(src.kube_proxy_config), src.kube_proxy_config)
    if src.pcaps and not src.service_cidrs:
        raise InputError("--pcap needs --service-cidr (and preferably --pod-cidr) to tell VIPs from pod IPs")
    inp.service_cidrs = cidrs(src.service_cidrs, "--service-cidr")
    inp.pod_cidrs = cidrs(src.pod_cidrs, "--pod-cidr")
    inp.captures = [capture.read(read_bytes(p), p) for p in src.pcaps]
    return inp
