"""nftables mode against the real `nft` and kernel, in lab namespaces: every expected table of the
fixtures and kplab's generated one list the same once loaded (handles dropped, elements sorted);
the transactions of TestSyncProxyRulesRepeated, applied one after another as kube-proxy runs them,
leave the expected table after every step; and `--format json` is what `nft -j list ruleset`
prints, for every case, both versions and dual-stack nodes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from kplab.kubeproxy import load_config, load_env, load_manifests
from kplab.kubeproxy.api import pick_node
from kplab.kubeproxy.nftmode.api import generate_nft
from kplab.kubeproxy.nftmode.canon import Key, canonical, differences
from kplab.kubeproxy.nftmode.context import IPV4
from kplab.kubeproxy.nftmode.names import NftVersion
from kplab.kubeproxy.nftmode.proxier import NftProxier
from kplab.kubeproxy.objects import NodeEnv
from kplab.lab.kpnft import clear, list_json, load
from kplab.lab.netns import Lab, Netns

from .test_nft_fixtures import NFT_CASES, SYNC, WITH_EXPECTED, nft_tables


def listed(ns: Netns, text: str) -> dict[Key, Any]:
    clear(ns)
    load(ns, text)
    return canonical(list_json(ns))


@pytest.mark.kernel
def test_generated_tables_list_as_upstreams_expected(lab: Lab) -> None:
    mine_ns, theirs_ns = lab.netns("mine"), lab.netns("theirs")
    failures = []
    for case in WITH_EXPECTED:
        path = case.file("expected", "nft")
        assert path is not None
        expected = listed(theirs_ns, path.read_text())
        got = listed(mine_ns, nft_tables(case).text)
        assert len(expected) > 40
        failures += [f"{case.id}: {d}" for d in differences(got, expected)]
    assert not failures, "\n".join(failures)


@pytest.mark.kernel
def test_repeated_sync_transactions_in_the_kernel(lab: Lab) -> None:
    """kube-proxy's own transactions (add+delete of the base chains, flushes, element deletes, the
    stale-chain deletion a second later) run in order in one namespace, as on a node."""
    node_ns, theirs_ns = lab.netns("node"), lab.netns("theirs")
    config, _ = load_config(str(SYNC / "kube-proxy.yaml"))
    proxier = NftProxier(NftVersion.CURRENT, IPV4, config, load_env(str(SYNC / "env.yaml")))
    now = 0.0
    compared = 0
    for step in yaml.safe_load((SYNC / "steps.yaml").read_text())["steps"]:
        cluster = load_manifests([str(SYNC / step["services"]), str(SYNC / "node.yaml")])
        node, name = pick_node(cluster, config, None)
        now += 2.0 if step.get("ageStaleChainsBefore") else 0.1
        result = proxier.sync(cluster, node, name, now)
        for tx in (result.cleanup, result.tx):
            if tx is not None and tx.ops:
                load(node_ns, "\n".join(tx.lines()) + "\n")
        real = canonical(list_json(node_ns))
        assert not differences(real, listed(theirs_ns, "\n".join(proxier.table.dump()) + "\n"))
        if step["expected"] is not None:
            expected = listed(theirs_ns, (SYNC / step["expected"]).read_text())
            assert not differences(real, expected), f"step {step['step']}"
            compared += 1
    assert compared == 12


@pytest.mark.kernel
def test_json_format_is_what_nft_lists(lab: Lab) -> None:
    ns = lab.netns("json")
    failures = []
    checked = 0
    for case in NFT_CASES:
        cluster, config, env = case.load()
        # the fixture's settings, and the other shapes: NodePorts on every address, an interface
        # detector and masqueradeAll, a bridge detector, no detector
        configs = [
            config,
            replace(
                config,
                node_port_addresses=("0.0.0.0/0", "::/0"),
                detect_local_mode="InterfaceNamePrefix",
                interface_name_prefix="veth",
                nft_masquerade_all=True,
            ),
            replace(config, detect_local_mode="BridgeInterface", bridge_interface="cbr0"),
            replace(config, cluster_cidrs=(), node_port_addresses=()),
        ]
        for version in NftVersion:
            for environment in (env, NodeEnv(interfaces=env.interfaces)):  # harness family, dual-stack
                for cfg in configs if environment is env else configs[:1]:
                    generated = generate_nft(cluster, config=cfg, env=environment, version=version)
                    real = listed(ns, generated.text)
                    diffs = differences(canonical(generated.json()), real)
                    failures += [f"{case.id} {version.value}: {d}" for d in diffs]
                    checked += len(generated.tables)
    assert checked >= 16 * 2 * 6
    assert not failures, "\n".join(failures[:20])
