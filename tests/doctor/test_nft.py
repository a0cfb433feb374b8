"""nftables mode: `nft -j list ruleset` made by the real nft from tests/data/doctor/*.nft."""

from __future__ import annotations

from pathlib import Path

import pytest

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


KP_TEXT = str(DATA / "nft-kube-proxy.nft")


def test_text_and_json_give_the_same_facts() -> None:
    text, as_json = analyse(Path(KP_TEXT).read_text(), "kp.nft"), analyse(Path(KP).read_text(), "kp.json")
    assert text.mode == as_json.mode == "nftables"
    assert text.kube_proxy_tables == as_json.kube_proxy_tables == ["ip kube-proxy"]
    assert [d.split(": ", 1)[1] for d in text.service_dnat] == [
        d.split(": ", 1)[1] for d in as_json.service_dnat
    ]


def test_nftables_mode_from_text_is_critical_without_a_mitigation(tmp_path: Path) -> None:
    r = report(nft=KP_TEXT, sysctl=sysctl_file(tmp_path, nf_conntrack_tcp_be_liberal=0))
    found = r.get("nftables-mode-no-invalid-drop")
    assert found is not None and found.severity is Severity.CRITICAL
    assert any("tcpBeLiberal" in f for f in found.fix) and any(
        "ct state invalid drop" in f for f in found.fix
    )
    assert r.inputs["nft"]["mode"] == "nftables"


@pytest.mark.parametrize(
    ("guard", "mitigated"),
    [
        (
            "table inet g {\n chain f {\n  type filter hook forward priority 10; policy accept;\n"
            "  ct state invalid drop\n }\n}\n",
            True,
        ),
        (
            "table ip g {\n chain f {\n  type filter hook forward priority 0; policy accept;\n"
            "  jump c\n }\n chain c {\n  ct state vmap { invalid : drop, established : accept }\n"
            "  ct state { invalid, untracked } counter reject\n }\n}\n",
            True,
        ),
        (
            "table ip g {\n chain f {\n  type filter hook forward priority 0; policy accept;\n"
            "  ct state new jump c\n }\n chain c {\n  ct state invalid drop\n }\n}\n",
            False,
        ),  # guarded
        (
            "table ip g {\n chain i {\n  type filter hook input priority 0; policy accept;\n"
            "  ct state invalid drop\n }\n}\n",
            False,
        ),  # input only: not the forward path
        (
            "table ip g {\n chain f {\n  type filter hook forward priority 0; policy accept;\n"
            '  iifname "eth9" ct state invalid drop\n }\n}\n',
            False,
        ),  # only on one interface
    ],
    ids=["inet-forward", "via-jump", "guarded-by-new", "input-only", "conditional"],
)
def test_an_operators_drop_rule_in_any_table(tmp_path: Path, guard: str, mitigated: bool) -> None:
    dump = tmp_path / "node.nft"
    dump.write_text(Path(KP_TEXT).read_text() + guard)
    r = report(nft=str(dump), sysctl=sysctl_file(tmp_path, nf_conntrack_tcp_be_liberal=0))
    assert ("mitigated-by-drop-rule" in r.ids()) is mitigated
    assert ("nftables-mode-no-invalid-drop" in r.ids()) is not mitigated
