"""kube-proxy's own expected dumps (upstream proxier_test.go, copied in tests/data/kube-proxy):
the `current` output equals them after the canonical sort and passes the consistency checks."""

from __future__ import annotations

import pytest

from kplab.kubeproxy import Version, generate
from kplab.kubeproxy.canon import chain_rules, check_jumps, sort_dump

from .fixtures import DATA, Case, cases

# Folders whose expected file is one chain's ordered rules, not a whole dump (their SOURCE.md).
ONE_CHAIN = {
    "drop_invalid_rule": ("filter", "KUBE-FORWARD"),
    "masquerade_rule": ("nat", "KUBE-POSTROUTING"),
    "nodeports": ("filter", "KUBE-FIREWALL"),
}
# Upstream runs checkIPTablesRuleJumps on these (checkConsistency=true).
CONSISTENCY_CHECKED = {"overall_current", "bad_ips", "sync_repeated"}
WITH_EXPECTED = [c for c in cases() if c.file("expected", "rules") is not None]


def current(case: Case) -> str:
    cluster, config, env = case.load()
    return generate(cluster, config=config, env=env, version=Version.CURRENT).restore_text


def test_every_expected_file_is_covered() -> None:
    expected = sorted(p.relative_to(DATA).as_posix() for p in DATA.glob("*/expected*.rules"))
    covered = {str(c.file("expected", "rules").relative_to(DATA)) for c in WITH_EXPECTED}  # type: ignore[union-attr]
    missing = [e for e in expected if e not in covered and "step" not in e and "trace_static" not in e]
    assert not missing
    assert len(WITH_EXPECTED) >= 11


@pytest.mark.parametrize("case", WITH_EXPECTED, ids=lambda c: c.id)
def test_current_matches_upstream_expected(case: Case) -> None:
    path = case.file("expected", "rules")
    assert path is not None
    expected = path.read_text()
    got = current(case)
    if case.folder in ONE_CHAIN:
        table, chain = ONE_CHAIN[case.folder]
        assert chain_rules(got, table, chain) == expected.splitlines()
    else:
        assert sort_dump(got) == expected
    if case.folder in CONSISTENCY_CHECKED:
        assert check_jumps(got) == []


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
@pytest.mark.parametrize("version", list(Version), ids=lambda v: v.value)
def test_every_jump_lands_on_a_declared_chain(case: Case, version: Version) -> None:
    """Weaker than upstream's check (empty chains and unused chains are allowed: eTP=Local without
    local endpoints leaves KUBE-XLB empty in v1.15, as it did upstream), but on every case."""
    cluster, config, env = case.load()
    text = generate(cluster, config=config, env=env, version=version, full_node=True).restore_text
    problems = [p for p in check_jumps(text) if "not created" in p]
    assert problems == []


def test_sort_keeps_the_nodeports_rule_last_and_orders_by_service() -> None:
    text = (
        "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-A - [0:0]\n:KUBE-NODEPORTS - [0:0]\n"
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last'
        ' rule in this chain" -j KUBE-NODEPORTS\n'
        '-A KUBE-SERVICES -m comment --comment "ns2/b:p cluster IP" -j KUBE-A\n'
        "-A KUBE-SERVICES -m comment --comment ns1/a:p -j KUBE-A\nCOMMIT\n*filter\nCOMMIT\n"
    )
    lines = sort_dump(text).splitlines()
    assert lines[0] == "*filter"
    assert lines[3:6] == [":KUBE-NODEPORTS - [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-A - [0:0]"]
    assert "ns1/a:p" in lines[6] and "ns2/b:p" in lines[7] and "last rule" in lines[8]


def test_consistency_check_finds_dangling_and_unused_chains() -> None:
    text = "*nat\n:KUBE-SVC-X - [0:0]\n:KUBE-SEP-Y - [0:0]\n-A KUBE-SVC-X -j KUBE-SEP-Z\nCOMMIT\n"
    problems = check_jumps(text)
    assert any("KUBE-SEP-Z, which is not created" in p for p in problems)
    assert any("KUBE-SEP-Y is created but never jumped to" in p for p in problems)
    assert any("KUBE-SVC-X is created but never jumped to" in p for p in problems)
