"""nftables mode: `nft -j list ruleset` made by the real nft from tests/data/doctor/*.nft."""

from __future__ import annotations

from pathlib import Path

from kplab.diagnose import Severity
from kplab.diagnose.nft import analyse

from .helpers import DATA, report, sysctl_file

KP = str(DATA / "nft-kube-proxy.json")
KP_DROP = str(DATA / "nft-kube-proxy-drop.json")


def test_kube_proxy_nftables_mode_is_detected() -> None:
    facts = analyse(Path(KP).read_text(), "kp.json")
    assert facts.kube_proxy_tables == ["ip kube-proxy"]
    assert len(facts.service_dnat) == 2
    assert facts.invalid_drops == []


def test_nftables_mode_without_drop_or_liberal_is_critical(tmp_path: Path) -> None:
    r = report(nft=KP, sysctl=sysctl_file(tmp_path, nf_conntrack_tcp_be_liberal=0))
    found = r.get("nftables-mode-no-invalid-drop")
    assert found is not None and found.severity is Severity.CRITICAL
    assert set(r.ids()) == {"nftables-mode-no-invalid-drop", "loose-pickup-risk"}
    assert any("tcpBeLiberal" in f for f in found.fix)


def test_a_forward_hook_drop_mitigates() -> None:
    r = report(nft=KP_DROP)
    assert set(r.ids()) == {"mitigated-by-drop-rule", "loose-pickup-risk"}
    drop = r.get("mitigated-by-drop-rule")
    assert drop is not None and "inet node-guard chain forward" in drop.evidence[0]


def test_be_liberal_from_the_kube_proxy_config_mitigates(tmp_path: Path) -> None:
    config = tmp_path / "kp.yaml"
    config.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy}\ndata:\n  config.conf: |\n"
        "    kind: KubeProxyConfiguration\n    mode: nftables\n    conntrack:\n      tcpBeLiberal: true\n"
    )
    r = report(nft=KP, kube_proxy_config=str(config))
    assert set(r.ids()) == {"mitigated-by-be-liberal", "loose-pickup-risk"}
    assert r.inputs["kube_proxy_config"]["mode"] == "nftables"


def test_jump_guarded_by_ct_state_new_does_not_count(tmp_path: Path) -> None:
    doc = (
        '{"nftables": [{"table": {"family": "ip", "name": "kube-proxy"}},'
        '{"chain": {"family": "ip", "table": "kube-proxy", "name": "fwd", "hook": "forward", "prio": 0}},'
        '{"chain": {"family": "ip", "table": "kube-proxy", "name": "x"}},'
        '{"chain": {"family": "ip", "table": "kube-proxy", "name": "ep"}},'
        '{"rule": {"family": "ip", "table": "kube-proxy", "chain": "ep", '
        '"expr": [{"dnat": {"addr": "10.1.1.1"}}]}},'
        '{"rule": {"family": "ip", "table": "kube-proxy", "chain": "fwd", "expr": ['
        '{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, '
        '{"jump": {"target": "x"}}]}},'
        '{"rule": {"family": "ip", "table": "kube-proxy", "chain": "x", "expr": ['
        '{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"drop": null}]}}]}'
    )
    path = tmp_path / "r.json"
    path.write_text(doc)
    assert "nftables-mode-no-invalid-drop" in report(nft=str(path)).ids()
    path.write_text(doc.replace('"right": "new"', '"right": {"set": ["new", "invalid"]}'))
    assert "mitigated-by-drop-rule" in report(nft=str(path)).ids()
