"""Every fixture case, every version: the `--full-node` output loads with the real
`iptables-restore` into a fresh lab namespace, and the real `iptables-save` prints exactly kplab's
`--format save` rendering (comment header and counters aside). One namespace per version."""

from __future__ import annotations

import difflib

import pytest

from kplab.kubeproxy import Cluster, KubeProxyConfig, NodeEnv, Version, generate, load_config, load_manifests
from kplab.kubeproxy.savefmt import strip_save_noise
from kplab.lab.kprules import load
from kplab.lab.netns import Lab

from .fixtures import DATA, cases

OWN = DATA.parent / "kube-proxy-own" / "legacy"


def own_case() -> tuple[Cluster, KubeProxyConfig, NodeEnv]:
    config, _ = load_config(str(OWN / "kube-proxy.yaml"))
    return load_manifests([str(OWN / "services.yaml"), str(OWN / "node.yaml")]), config, NodeEnv()


def all_inputs() -> list[tuple[str, tuple[Cluster, KubeProxyConfig, NodeEnv]]]:
    return [(c.id, c.load()) for c in cases()] + [("own/legacy", own_case())]


@pytest.mark.kernel
@pytest.mark.parametrize("version", list(Version), ids=lambda v: v.value)
def test_full_node_loads_and_saves_as_rendered(lab: Lab, version: Version) -> None:
    ns = lab.netns("kp")
    failures: list[str] = []
    checked = 0
    for name, (cluster, config, env) in all_inputs():
        rules = generate(cluster, config=config, env=env, version=version, full_node=True)
        load(ns, rules, env.nfacct)
        real = strip_save_noise(ns.run(["iptables-save"]).stdout)
        mine = rules.save_text().splitlines()
        if real != mine:
            diff = "\n".join(difflib.unified_diff(mine, real, "kplab", "iptables-save", n=0, lineterm=""))
            failures.append(f"{name}:\n{diff}")
        checked += 1
    assert checked >= 30
    assert not failures, "\n\n".join(failures)
