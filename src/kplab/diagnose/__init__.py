"""`kplab doctor`: diagnose a node or a capture for the escaped-NAT reset, with evidence and fixes.

    inputs = load(Sources(iptables_save="node.save", sysctl="sysctl.txt", uname="5.4.0-150-generic"))
    report = diagnose(inputs)            # Report(findings, inputs)
    report.exit_code(Severity.CRITICAL)  # 0 healthy, 1 findings at or above
    to_json(report) / to_console(report, console)

Module map: one module per input kind (rules: iptables-save via kplab.netfilter.iptables_save;
nft: `nft -j list ruleset`; sysctl; ctstats: /proc/net/stat/nf_conntrack and `conntrack -S`;
kernel: uname release; kpconfig: KubeProxyConfiguration; capture: pcap/pcapng with dpkt; live:
this host, read-only), flows (escaped packets matched across NAT), one module per finding family
(find_nat, find_host, find_pcap), diagnose (all families, merged), render, collect, load.

Facts the findings rest on are in the notes (linux-conntrack.md, kube-proxy.md), checked where
marked by real-kernel tests in tests/doctor.
"""

from kplab.diagnose.diagnose import diagnose
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.load import Sources, load
from kplab.diagnose.model import Finding, Report, Severity

__all__ = ["Finding", "Inputs", "Report", "Severity", "Sources", "diagnose", "load"]
