"""TestSyncProxyRulesRepeated (fixture sync_repeated): nine syncs on one proxier, partial restores
included, each compared after the canonical sort with upstream's expected restore input."""

from __future__ import annotations

import sys

import pytest
import yaml

from kplab.kubeproxy import Version, load_config, load_env, load_manifests
from kplab.kubeproxy.canon import check_jumps, sort_dump
from kplab.kubeproxy.savefmt import strip_save_noise
from kplab.kubeproxy.sync import NatTable, Proxier
from kplab.lab.netns import Lab

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


@pytest.mark.kernel
def test_nine_syncs_against_the_real_kernel(lab: Lab) -> None:
    """The same nine restore inputs through the real `iptables-restore --noflush` (as kube-proxy
    runs it): the kernel accepts exactly what NatTable accepts, holds the same nat chains with the
    same number of rules after every step, and ends equal to the last full sync's rendering."""
    ns = lab.netns("sync")
    config, _ = load_config(str(FOLDER / "kube-proxy.yaml"))
    env = load_env(str(FOLDER / "env.yaml"))
    proxier = Proxier(config, env)
    ns.run([sys.executable, "-m", "kplab.lab.kprules", *sorted(env.nfacct)])
    steps = yaml.safe_load((FOLDER / "steps.yaml").read_text())["steps"]
    result = None
    for step in steps:
        cluster = load_manifests([str(FOLDER / step["services"]), str(FOLDER / "node.yaml")])
        if step["step"] == 9:
            bogus = ["-A", "KUBE-SVC-X27LE4BHSL4DOUIK", "-j", "KUBE-SEP-AYCN5HPXMIRJNJXU"]
            proxier.nat.chains["KUBE-SVC-X27LE4BHSL4DOUIK"].append(" ".join(bogus))
            ns.run(["iptables", "-t", "nat", *bogus])
            failed = proxier.sync(cluster)
            refused = ns.run(
                ["iptables-restore", "--noflush", "--counters"], input=failed.rules.restore_text, check=False
            )
            assert failed.error is not None and refused.returncode != 0
        result = proxier.sync(cluster)
        ns.run(["iptables-restore", "--noflush", "--counters"], input=result.rules.restore_text)
        real = _nat_chains(ns.run(["iptables-save", "-t", "nat"]).stdout)
        assert real == {name: len(rules) for name, rules in proxier.nat.chains.items()}, (
            f"step {step['step']}"
        )
    assert result is not None
    real_save = strip_save_noise(ns.run(["iptables-save"]).stdout)
    assert real_save == result.rules.save_text().splitlines()


def _nat_chains(save: str) -> dict[str, int]:
    chains = {line[1:].split()[0]: 0 for line in save.splitlines() if line.startswith(":KUBE-")}
    for line in save.splitlines():
        if line.startswith("-A KUBE-"):
            chains[line.split()[1]] += 1
    return chains
