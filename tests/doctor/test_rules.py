"""Findings from iptables-save dumps made by the real iptables-save (tests/data/doctor/make_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplab.diagnose import Severity
from kplab.diagnose.rules import analyse

from .helpers import DATA, SYSCTL_DEFAULT, report, sysctl_file

NAT_IDS = {"invalid-not-dropped", "mitigated-by-drop-rule", "mitigated-by-be-liberal", "loose-pickup-risk"}


def dump(name: str) -> str:
    return str(DATA / f"{name}.save")


def test_v114_with_be_liberal_off_reports_the_bug_and_both_fixes() -> None:
    r = report(iptables_save=dump("kp-1.14"), sysctl=SYSCTL_DEFAULT)
    bug = r.get("invalid-not-dropped")
    assert bug is not None and bug.severity is Severity.CRITICAL
    assert set(r.ids()) == {"invalid-not-dropped", "loose-pickup-risk"}
    assert any("--ctstate INVALID -j DROP" in f for f in bug.fix)
    assert any("nf_conntrack_tcp_be_liberal=1" in f for f in bug.fix)
    text = (DATA / "kp-1.14.save").read_text().split("\n")
    dnat = [e for e in bug.evidence if "-j DNAT" in e]
    assert len(dnat) == 3
    for line in dnat:  # each quoted rule is the dump's own line at that number
        where, _, rule = line.partition(": ")
        assert text[int(where.rsplit(":", 1)[1]) - 1] == rule
    assert any(e.endswith("nf_conntrack_tcp_be_liberal = 0") for e in bug.evidence)
    assert r.exit_code(Severity.CRITICAL) == 1


def test_v115_reports_the_mitigation_and_the_loose_pickup_residue() -> None:
    r = report(iptables_save=dump("kp-1.15"), sysctl=SYSCTL_DEFAULT)
    assert set(r.ids()) == {"mitigated-by-drop-rule", "loose-pickup-risk"}
    drop = r.get("mitigated-by-drop-rule")
    assert drop is not None
    assert drop.evidence[-1].endswith(":18: -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP")
    assert "-j KUBE-FORWARD" in drop.evidence[0]  # the FORWARD jump that leads there
    assert r.exit_code(Severity.CRITICAL) == 0
    assert r.exit_code(Severity.WARNING) == 1


def test_current_nfacct_variant_is_a_drop_rule_and_names_the_metric() -> None:
    r = report(iptables_save=dump("kp-current-nfacct"), sysctl=SYSCTL_DEFAULT)
    drop = r.get("mitigated-by-drop-rule")
    assert drop is not None and drop.data["nfacct"] == "ct_state_invalid_dropped_pkts"
    assert "kubeproxy_iptables_ct_state_invalid_dropped_packets_total" in drop.meaning
    assert r.get("invalid-not-dropped") is None


def test_be_liberal_on_is_the_mitigation(tmp_path: Path) -> None:
    liberal = sysctl_file(tmp_path, nf_conntrack_tcp_be_liberal=1, nf_conntrack_tcp_loose=1)
    for name in ("kp-current-liberal", "kp-1.14"):
        r = report(iptables_save=dump(name), sysctl=liberal)
        assert set(r.ids()) == {"mitigated-by-be-liberal", "loose-pickup-risk"}, name


def test_current_liberal_dump_without_sysctl_is_not_assumed_safe() -> None:
    # kube-proxy >= 1.29 omits the rule when be_liberal was set at its start; without the sysctl the
    # doctor cannot know it still is, and says so in the evidence.
    r = report(iptables_save=dump("kp-current-liberal"))
    bug = r.get("invalid-not-dropped")
    assert bug is not None and any("not given" in e for e in bug.evidence)


def test_loose_zero_has_no_pickup_risk(tmp_path: Path) -> None:
    strict = sysctl_file(tmp_path, nf_conntrack_tcp_be_liberal=0, nf_conntrack_tcp_loose=0)
    assert set(report(iptables_save=dump("kp-1.15"), sysctl=strict).ids()) == {"mitigated-by-drop-rule"}


def test_mixed_dump_with_docker_and_kubelet() -> None:
    facts = analyse((DATA / "mixed-1.15.save").read_text(), "mixed")
    assert len(facts.service_dnat) == 3 and len(facts.other_dnat) == 1  # Docker's port mapping
    assert set(report(iptables_save=dump("mixed-1.15"), sysctl=SYSCTL_DEFAULT).ids()) == {
        "mitigated-by-drop-rule",
        "loose-pickup-risk",
    }


@pytest.mark.parametrize("name", ["docker", "kubelet", "calico"])
def test_dumps_without_service_dnat_have_no_nat_findings(name: str) -> None:
    path = DATA.parent / "dumps" / "saved" / f"{name}.save"
    assert not NAT_IDS & set(report(iptables_save=str(path), sysctl=SYSCTL_DEFAULT).ids())


HEAD = (
    "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SEP-A - [0:0]\n"
    "-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.244.1.2:80\nCOMMIT\n"
)


@pytest.mark.parametrize(
    ("forward", "found"),
    [
        (["-A FORWARD -m conntrack --ctstate INVALID -j DROP"], "mitigated-by-drop-rule"),
        (["-A FORWARD -m state --state INVALID -j DROP"], "mitigated-by-drop-rule"),
        (["-A FORWARD -j X", "-A X -m conntrack --ctstate INVALID,NEW -j REJECT"], "mitigated-by-drop-rule"),
        (["-A FORWARD -j ACCEPT", "-A FORWARD -m conntrack --ctstate INVALID -j DROP"],
         "invalid-not-dropped"),
        (["-A FORWARD -s 10.244.0.0/16 -m conntrack --ctstate INVALID -j DROP"], "invalid-not-dropped"),
        (["-A FORWARD -m conntrack --ctstate NEW -j X", "-A X -m conntrack --ctstate INVALID -j DROP"],
         "invalid-not-dropped"),
        (["-A FORWARD -m conntrack ! --ctstate INVALID -j DROP"], "invalid-not-dropped"),
        (["-A FORWARD -m conntrack --ctstate INVALID -j ACCEPT"], "invalid-not-dropped"),
    ],
)  # fmt: skip
def test_forward_path_walk(tmp_path: Path, forward: list[str], found: str) -> None:
    chains = ":FORWARD ACCEPT [0:0]\n" + (":X - [0:0]\n" if any(" X" in r for r in forward) else "")
    path = tmp_path / "d.save"
    path.write_text(HEAD + "*filter\n" + chains + "\n".join(forward) + "\nCOMMIT\n")
    ids = report(iptables_save=str(path), sysctl=sysctl_file(tmp_path, nf_conntrack_tcp_be_liberal=0)).ids()
    assert found in ids
    assert ({"invalid-not-dropped", "mitigated-by-drop-rule"} - {found}).isdisjoint(ids)


def test_partial_drop_is_quoted_with_its_condition(tmp_path: Path) -> None:
    path = tmp_path / "d.save"
    rule = "-A FORWARD -s 10.244.0.0/16 -m conntrack --ctstate INVALID -j DROP"
    path.write_text(HEAD + "*filter\n:FORWARD ACCEPT [0:0]\n" + rule + "\nCOMMIT\n")
    bug = report(iptables_save=str(path)).get("invalid-not-dropped")
    assert bug is not None
    assert any(rule in e and "only when: match: -s 10.244.0.0/16" in e for e in bug.evidence)
