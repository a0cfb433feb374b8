"""`kplab doctor` on real nodes' dumps (tests/data/nodes): partial dumps, IPVS mode, another
iptables backend, `iptables -S` output, a short ESTABLISHED timeout, samples that are no pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplab.diagnose import Severity

from .helpers import SYSCTL_DEFAULT, report, run, run_json

NODES = Path(__file__).resolve().parent.parent / "data" / "nodes"


def test_nat_only_dump_is_cannot_tell_never_critical() -> None:
    r = report(iptables_save=str(NODES / "nat-only-1.23.save"), sysctl=SYSCTL_DEFAULT)
    assert "invalid-not-dropped" not in r.ids()
    found = r.get("cannot-tell-invalid-drop")
    assert found is not None and found.severity is Severity.INFO
    assert (
        "iptables-save" in " ".join(found.fix) and "tables in the dump: nat (no filter)" in found.evidence[0]
    )
    assert r.worst() is not Severity.CRITICAL


def test_advice_never_names_a_version_older_than_the_node(tmp_path: Path) -> None:
    """A 1.23 node whose KUBE-FORWARD drop is gone: no "upgrade to 1.15"."""
    text = (NODES / "kubeadm-flannel.save").read_text()
    dump = tmp_path / "no-drop.save"
    dump.write_text(text.replace("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n", ""))
    found = report(iptables_save=str(dump), sysctl=SYSCTL_DEFAULT).get("invalid-not-dropped")
    assert found is not None and found.severity is Severity.CRITICAL
    assert not any("upgrade" in fix for fix in found.fix)
    assert "kube-proxy 1.19 or later writes" in found.fix[0]
    assert any("written by kube-proxy 1.19 or later" in e for e in found.evidence)
    old = report(iptables_save=str(Path(__file__).parent.parent / "data" / "doctor" / "kp-1.14.save"),
                 sysctl=SYSCTL_DEFAULT).get("invalid-not-dropped")  # fmt: skip
    assert old is not None and "upgrade kube-proxy to 1.15" in old.fix[0]


def test_ipvs_mode_is_detected_and_says_what_applies() -> None:
    r = report(iptables_save=str(NODES / "ipvs.save"), sysctl=SYSCTL_DEFAULT)
    ipvs = r.get("ipvs-mode")
    assert ipvs is not None and "ipvsadm" in ipvs.meaning and "net.ipv4.vs.conntrack=1" in ipvs.meaning
    assert any("KUBE-CLUSTER-IP" in e for e in ipvs.evidence)
    assert any("no rule drops --ctstate INVALID" in e for e in ipvs.evidence)
    assert "loose-pickup-risk" in r.ids() and "invalid-not-dropped" not in r.ids()


def test_other_backend_warning_line_is_reported() -> None:
    r = report(iptables_save=str(NODES / "kind.save"), sysctl=SYSCTL_DEFAULT)
    found = r.get("other-iptables-backend")
    assert found is not None and found.evidence[0].startswith(
        f"{NODES / 'kind.save'}:13: # Warning: iptables-legacy"
    )
    assert "mitigated-by-drop-rule" in r.ids()


def test_iptables_s_output_is_diagnosed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys, "doctor", "--iptables-save", str(NODES / "eks.iptables-S.txt"),
                         "--sysctl", SYSCTL_DEFAULT)  # fmt: skip
    ids = [f["id"] for f in out["findings"]]
    assert "mitigated-by-drop-rule" in ids and "cannot-tell-invalid-drop" not in ids and code == 0
    drop = next(f for f in out["findings"] if f["id"] == "mitigated-by-drop-rule")
    assert drop["evidence"][-1].endswith(
        "eks.iptables-S.txt:25: -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
    )


def test_short_established_timeout_is_a_lost_entry_cause() -> None:
    r = report(iptables_save=str(NODES / "kubeadm-flannel.save"), sysctl=str(NODES / "short-timeout.sysctl"))
    found = r.get("established-timeout-short")
    assert found is not None and found.severity is Severity.WARNING
    assert found.data["timeout_s"] == 4000 and "4000 s" in found.title
    assert "loose=1" in found.meaning and "loose-pickup-risk" in found.meaning
    assert found.evidence[0].endswith(
        "short-timeout.sysctl:10: net.netfilter.nf_conntrack_tcp_timeout_established = 4000"
    )
    assert "loose-pickup-risk" in r.ids()
    assert report(sysctl=SYSCTL_DEFAULT).get("established-timeout-short") is None


def test_counters_that_go_down_are_not_a_pair(capsys: pytest.CaptureFixture[str]) -> None:
    samples = [str(NODES / "ct-S-1.txt"), str(NODES / "ct-S-2-after-reboot.txt")]
    r = report(conntrack_stats=samples, stats_interval_s=60.0)
    found = r.get("samples-not-a-pair")
    assert found is not None and "invalid" in found.data["went_down"]
    assert any("invalid 8612 -> 58" in e for e in found.evidence) and any(
        "4 CPUs" in e for e in found.evidence
    )
    assert "invalid-counter-rising" not in r.ids() and "table-pressure" not in r.ids()
    code, out, _ = run(capsys, "doctor", "--conntrack-stats", samples[0], "--conntrack-stats", samples[1],
                         "--stats-interval", "60")  # fmt: skip
    assert code == 0 and "/s" not in out and "not a before/after pair" in out


def test_collect_gathers_interfaces_routes_and_ipsets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "doctor", "collect")
    assert code == 0
    for command in ("ip -j addr > ip-addr.json", "ip -j route > ip-route.json", "ipset save > ipset.txt"):
        assert command in out
    assert "--ip-addr ip-addr.json --ip-route ip-route.json --ipset-save ipset.txt" in out
