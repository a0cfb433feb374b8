"""Everything the doctor was given, parsed; each part optional."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kplab.diagnose.capture import Capture
from kplab.diagnose.ctstats import CtSample
from kplab.diagnose.flows import Cidr
from kplab.diagnose.kernel import KernelRelease
from kplab.diagnose.kpconfig import KubeProxySettings
from kplab.diagnose.nft import NftFacts
from kplab.diagnose.rules import RuleFacts
from kplab.diagnose.sysctl import BE_LIBERAL, LOOSE, Sysctls
from kplab.packet import fmt_ip


@dataclass(slots=True)
class Inputs:
    rules: RuleFacts | None = None
    nft: NftFacts | None = None
    sysctls: Sysctls | None = None
    ct_samples: list[CtSample] = field(default_factory=list)
    sample_interval_s: float | None = None  # seconds between the two counter samples, if known
    kernel: KernelRelease | None = None
    kube_proxy: KubeProxySettings | None = None
    captures: list[Capture] = field(default_factory=list)
    service_cidrs: list[Cidr] = field(default_factory=list)
    pod_cidrs: list[Cidr] = field(default_factory=list)
    live: bool = False
    notes: list[str] = field(default_factory=list)  # what could not be read (live mode)

    def sysctl(self, key: str) -> int | None:
        return self.sysctls.integer(key) if self.sysctls is not None else None

    def be_liberal(self) -> tuple[int | None, str]:
        """The effective be_liberal and where that comes from (the sysctl wins over the config)."""
        value = self.sysctl(BE_LIBERAL)
        if value is not None and self.sysctls is not None:
            return value, self.sysctls.where(BE_LIBERAL)
        kp = self.kube_proxy
        if kp is not None and kp.tcp_be_liberal:
            return 1, f"{kp.where('conntrack.tcpBeLiberal')} = true (kube-proxy sets the sysctl to 1)"
        return None, f"{BE_LIBERAL}: not given (--sysctl); the kernel default is 0"

    def loose(self) -> tuple[int, str]:
        value = self.sysctl(LOOSE)
        if value is not None and self.sysctls is not None:
            return value, self.sysctls.where(LOOSE)
        return 1, f"{LOOSE}: not given (--sysctl); the kernel default is 1"

    def describe(self) -> dict[str, Any]:
        """What was read, for the report's "inputs" (only the inputs that were given)."""
        out: dict[str, Any] = {"live": self.live}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.rules is not None:
            out["iptables_save"] = _rules(self.rules)
        if self.nft is not None:
            n = self.nft
            counts = {"service_dnat_rules": len(n.service_dnat), "invalid_drop_rules": len(n.invalid_drops)}
            tables = {"mode": n.mode, "kube_proxy_tables": n.kube_proxy_tables}
            out["nft"] = {"file": n.file, **tables, **counts}
        if self.sysctls is not None:
            out["sysctl"] = {"file": self.sysctls.file, "keys": len(self.sysctls.values)}
        if self.ct_samples:
            out["conntrack_stats"] = [_sample(s) for s in self.ct_samples]
        if self.kernel is not None:
            out["uname"] = self.kernel.text
        if self.kube_proxy is not None:
            kp = self.kube_proxy
            settings = {"mode": kp.effective_mode, "tcpBeLiberal": kp.tcp_be_liberal}
            out["kube_proxy_config"] = {"file": kp.file, **settings}
        if self.captures:
            out["pcap"] = [_capture(c) for c in self.captures]
            out["service_cidr"] = [_cidr(c) for c in self.service_cidrs]
            out["pod_cidr"] = [_cidr(c) for c in self.pod_cidrs]
        return out


def _rules(r: RuleFacts) -> dict[str, Any]:
    return {
        "file": r.file,
        "kube_proxy_iptables": r.kube_proxy,
        "service_dnat_rules": len(r.service_dnat),
        "other_dnat_rules": len(r.other_dnat),
        "invalid_drop_rules": [r.text(d.rule) for d in r.invalid_drops],
    }


def _sample(s: CtSample) -> dict[str, Any]:
    return {"file": s.file, "format": s.format, "cpus": s.cpus, "totals": s.totals, "entries": s.entries}


def _capture(c: Capture) -> dict[str, Any]:
    return {"file": c.file, "format": c.format, "frames": c.frames, "tcp_segments": len(c.segments),
            "interfaces": c.interfaces}  # fmt: skip


def _cidr(cidr: Cidr) -> str:
    net, mask = cidr
    return f"{fmt_ip(net)}/{bin(mask).count('1')}"
