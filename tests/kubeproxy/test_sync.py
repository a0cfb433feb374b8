"""TestSyncProxyRulesRepeated (fixture sync_repeated): nine syncs on one proxier, partial restores
included, each compared after the canonical sort with upstream's expected restore input."""

from __future__ import annotations

import yaml

from kplab.kubeproxy import Version, load_config, load_env, load_manifests
from kplab.kubeproxy.canon import check_jumps, sort_dump
from kplab.kubeproxy.sync import NatTable, Proxier

from .fixtures import DATA

FOLDER = DATA / "sync_repeated"


def test_nine_syncs_match_upstream() -> None:
    config, _ = load_config(str(FOLDER / "kube-proxy.yaml"))
    proxier = Proxier(config, load_env(str(FOLDER / "env.yaml")))
    steps = yaml.safe_load((FOLDER / "steps.yaml").read_text())["steps"]
    assert len(steps) == 9
    for step in steps:
        cluster = load_manifests([str(FOLDER / step["services"]), str(FOLDER / "node.yaml")])
        if step["step"] == 9:
            # upstream's "before": a bogus rule keeps svc4's endpoint chain referenced, so the partial
            # restore that deletes it fails and the next sync is a full one.
            proxier.nat.chains["KUBE-SVC-X27LE4BHSL4DOUIK"].append(
                "-A KUBE-SVC-X27LE4BHSL4DOUIK -j KUBE-SEP-AYCN5HPXMIRJNJXU"
            )
            failed = proxier.sync(cluster)
            assert failed.error is not None and not failed.full
            assert proxier.partial_restore_failures == 1 and proxier.need_full_sync
        result = proxier.sync(cluster)
        assert result.error is None, step
        assert result.full == (step["kind"] == "full"), step["step"]
        expected = (FOLDER / step["expected"]).read_text()
        assert sort_dump(result.rules.restore_text) == expected, f"step {step['step']}"
        if step["checkConsistency"]:
            assert check_jumps(result.rules.restore_text) == []
    assert not proxier.need_full_sync


def test_nat_table_refuses_deleting_a_referenced_chain() -> None:
    nat = NatTable({"KUBE-A": ["-A KUBE-A -j KUBE-B"], "KUBE-B": []})
    assert nat.apply("*nat\n:KUBE-B - [0:0]\n-X KUBE-B\nCOMMIT\n") is not None
    assert set(nat.chains) == {"KUBE-A", "KUBE-B"}  # unchanged: a restore is atomic
    assert nat.apply("*nat\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n-X KUBE-B\nCOMMIT\n") is None
    assert nat.chains == {"KUBE-A": []}


def test_legacy_always_syncs_fully_and_deletes_stale_chains() -> None:
    config, _ = load_config(str(FOLDER / "kube-proxy.yaml"))
    proxier = Proxier(config, load_env(str(FOLDER / "env.yaml")), Version.V1_15)
    first = proxier.sync(load_manifests([str(FOLDER / "services.step2.yaml"), str(FOLDER / "node.yaml")]))
    second = proxier.sync(load_manifests([str(FOLDER / "services.step3.yaml"), str(FOLDER / "node.yaml")]))
    assert first.full and second.full and second.error is None
    deleted = [line for line in second.rules.lines if line.startswith("-X ")]
    assert deleted and all(line.startswith(("-X KUBE-SVC-", "-X KUBE-SEP-")) for line in deleted)
    assert "ns2/svc2" not in second.rules.restore_text
