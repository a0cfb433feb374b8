"""The doctor against the real kernel: dumps the real iptables-save prints, `--live` inside a lab
namespace (read-only), and a real escaped reset captured in a lab client namespace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kplab.diagnose import Sources, diagnose, load
from kplab.kubeproxy import GeneratedRules, NodeEnv, Version, generate, load_config, load_manifests
from kplab.lab.kprules import load as load_rules
from kplab.lab.netns import Lab, Netns

from .helpers import DATA
from .lab_reset import run_challenge, run_reset

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


def kube_proxy_rules(version: Version, nfacct: bool = False) -> tuple[GeneratedRules, frozenset[str]]:
    """The rules make_data.py loaded: cluster.yaml through kplab rules --full-node, be_liberal=0."""
    config, _ = load_config(str(DATA / "kube-proxy.yaml"))
    env = NodeEnv(nfacct=frozenset({"ct_state_invalid_dropped_pkts"}) if nfacct else frozenset())
    rules = generate(load_manifests([str(DATA / "cluster.yaml")]), config=config, env=env, version=version,
                     sysctls={BE_LIBERAL: 0}, full_node=True)  # fmt: skip
    return rules, env.nfacct


def strip_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("name", "version", "nfacct", "expected"),
    [("kp-1.14", Version.V1_14, False, "invalid-not-dropped"),
     ("kp-1.15", Version.V1_15, False, "mitigated-by-drop-rule"),
     ("kp-current-nfacct", Version.CURRENT, True, "mitigated-by-drop-rule")],
)  # fmt: skip
def test_fresh_dump_matches_the_committed_one_and_is_diagnosed(
    lab: Lab, tmp_path: Path, name: str, version: Version, nfacct: bool, expected: str
) -> None:
    ns = lab.netns("kp")
    ns.sysctl(BE_LIBERAL, 0)
    rules, counters = kube_proxy_rules(version, nfacct)
    load_rules(ns, rules, counters)
    saved = ns.run(["iptables-save"]).stdout
    assert strip_comments(saved) == strip_comments((DATA / f"{name}.save").read_text())
    (tmp_path / "d.save").write_text(saved)
    (tmp_path / "s.txt").write_text(ns.run(["sysctl", "-a"], check=False).stdout)
    report = diagnose(load(Sources(iptables_save=str(tmp_path / "d.save"), sysctl=str(tmp_path / "s.txt"))))
    assert expected in report.ids() and "loose-pickup-risk" in report.ids()


def live(ns: Netns, *args: str) -> tuple[int, dict[str, object]]:
    proc = ns.run([sys.executable, "-c", "from kplab.cli import main; main()", "doctor", "--live",
                   "--live-interval", "0", "-o", "json", *args], check=False)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def state(ns: Netns) -> tuple[list[str], str, str]:
    """What --live must not change: the rules (counters aside) and the conntrack sysctls."""
    rules = strip_comments(ns.run(["iptables-save"]).stdout)
    sysctls = ns.run(["sh", "-c", "cat /proc/sys/net/netfilter/nf_conntrack_tcp_*"], check=False).stdout
    return rules, sysctls, ns.run(["ip", "-o", "link"]).stdout


@pytest.mark.kernel
def test_live_reads_its_namespace_and_changes_nothing(lab: Lab) -> None:
    ns = lab.netns("live")
    code, doc = live(ns)
    assert code == 0 and [f["id"] for f in doc["findings"]] == ["kernel-era"]  # type: ignore[attr-defined]
    assert doc["inputs"]["live"] is True  # type: ignore[index]
    rules, _ = kube_proxy_rules(Version.V1_14)
    load_rules(ns, rules)
    ns.sysctl(BE_LIBERAL, 0)
    before = state(ns)
    code, doc = live(ns, "--fail-on", "critical")
    assert state(ns) == before
    ids = [f["id"] for f in doc["findings"]]  # type: ignore[index, union-attr]
    assert code == 1 and "invalid-not-dropped" in ids and "loose-pickup-risk" in ids
    ns.sysctl(BE_LIBERAL, 1)
    code, doc = live(ns)
    ids = [f["id"] for f in doc["findings"]]  # type: ignore[index, union-attr]
    assert code == 0 and "mitigated-by-be-liberal" in ids and "invalid-not-dropped" not in ids


@pytest.mark.kernel
@pytest.mark.parametrize("drop_rule", [False, True], ids=["no-drop-rule", "drop-rule"])
def test_real_escaped_reset_after_a_lost_entry(lab: Lab, tmp_path: Path, drop_rule: bool) -> None:
    """The kernel's own verdict (server ECONNRESET) and the doctor's reading of the client capture
    agree; the DROP INVALID rule does not help against a picked-up entry (loose=1)."""
    pcap = tmp_path / "client.pcap"
    saw = run_reset(lab, pcap, drop_invalid=drop_rule)
    assert saw["server"] == "ConnectionResetError" and saw["client"] == "ConnectionResetError"
    report = diagnose(load(Sources(pcaps=[str(pcap)], service_cidrs=["192.168.0.0/24"],
                                   pod_cidrs=["10.0.1.0/24"])))  # fmt: skip
    found = report.get("escaped-reverse-nat")
    assert found is not None
    (conn,) = found.data["connections"]
    assert conn["client"] == f"10.0.0.2:{saw['port']}" and conn["backend"] == "10.0.1.2:80"
    assert conn["rst_exact"] is True and conn["server"] == "reset"


@pytest.mark.kernel
def test_real_challenge_ack_survival(lab: Lab, tmp_path: Path) -> None:
    """An ACK for data the client never sent escapes (INVALID: ACK over upper bound); the client's RST
    carries that ACK as its seq, in the server's window but not exact: challenge ACK, the server lives
    (the client still receives its next data) and the doctor says so."""
    pcap = tmp_path / "client.pcap"
    saw = run_challenge(lab, pcap)
    assert saw["client"] == "b'world'"
    report = diagnose(load(Sources(pcaps=[str(pcap)], service_cidrs=["192.168.0.0/24"],
                                   pod_cidrs=["10.0.1.0/24"])))  # fmt: skip
    assert report.ids() == ["escaped-reverse-nat", "challenge-ack-survived"]
    found = report.get("challenge-ack-survived")
    assert found is not None
    (conn,) = found.data["connections"]
    assert conn["rst_exact"] is False and conn["server"] == "survived"
    assert any("challenge ACK" in e for e in found.evidence)


NFT_RULESET = DATA.parent / "kube-proxy-nftables" / "overall_current" / "expected.nft"
GUARD = "table inet guard {\n chain forward {\n  type filter hook forward priority filter; policy accept;\n" \
        "  ct state invalid drop\n }\n}\n"  # fmt: skip


@pytest.mark.kernel
def test_live_on_an_nftables_mode_node(lab: Lab) -> None:
    """kube-proxy's nftables table loaded with the real nft: the mode is read from the ruleset; with
    be_liberal 0 and no drop it is critical, an operator's drop table or be_liberal 1 mitigates."""
    ns = lab.netns("nftlive")
    ns.run(["nft", "-f", "-"], input=NFT_RULESET.read_text())
    ns.sysctl(BE_LIBERAL, 0)
    before = ns.run(["nft", "list", "ruleset"]).stdout
    code, doc = live(ns, "--fail-on", "critical")
    assert ns.run(["nft", "list", "ruleset"]).stdout == before
    ids = [f["id"] for f in doc["findings"]]  # type: ignore[index, union-attr]
    assert code == 1 and "nftables-mode-no-invalid-drop" in ids
    assert doc["inputs"]["nft"]["mode"] == "nftables"  # type: ignore[index]
    ns.run(["nft", "-f", "-"], input=GUARD)
    code, doc = live(ns, "--fail-on", "critical")
    ids = [f["id"] for f in doc["findings"]]  # type: ignore[index, union-attr]
    assert code == 0 and "mitigated-by-drop-rule" in ids and "nftables-mode-no-invalid-drop" not in ids
    ns.run(["nft", "delete", "table", "inet", "guard"])
    ns.sysctl(BE_LIBERAL, 1)
    code, doc = live(ns, "--fail-on", "critical")
    ids = [f["id"] for f in doc["findings"]]  # type: ignore[index, union-attr]
    assert code == 0 and "mitigated-by-be-liberal" in ids and "nftables-mode-no-invalid-drop" not in ids
