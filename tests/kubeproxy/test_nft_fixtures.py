"""nftables mode against kube-proxy's own expected tables (upstream pkg/proxy/nftables
proxier_test.go, copied in tests/data/kube-proxy-nftables): the `current` output is the expected
dump byte for byte, and TestSyncProxyRulesRepeated's syncs give every expected table with
upstream's transaction sizes and stale chains."""

from __future__ import annotations

import pytest
import yaml

from kplab.kubeproxy import load_config, load_env, load_manifests
from kplab.kubeproxy.api import pick_node
from kplab.kubeproxy.nftmode.api import GeneratedNft, generate_nft
from kplab.kubeproxy.nftmode.context import IPV4
from kplab.kubeproxy.nftmode.names import NftVersion
from kplab.kubeproxy.nftmode.proxier import NftProxier

from .fixtures import NFT_DATA, Case, cases

NFT_CASES = cases(NFT_DATA)
WITH_EXPECTED = [c for c in NFT_CASES if c.file("expected", "nft") is not None]
SYNC = NFT_DATA / "sync_repeated"


def nft_tables(case: Case, version: NftVersion = NftVersion.CURRENT) -> GeneratedNft:
    cluster, config, env = case.load()
    return generate_nft(cluster, config=config, env=env, version=version)


def test_every_expected_dump_is_covered() -> None:
    expected = sorted(p.relative_to(NFT_DATA).as_posix() for p in NFT_DATA.glob("*/expected*.nft"))
    covered = {str(c.file("expected", "nft").relative_to(NFT_DATA)) for c in WITH_EXPECTED}  # type: ignore[union-attr]
    assert [e for e in expected if e not in covered and "step" not in e] == []
    assert {c.folder for c in WITH_EXPECTED} == {"overall_current", "bad_ips", "sync_repeated"}
    assert len(NFT_CASES) >= 16


@pytest.mark.parametrize("case", WITH_EXPECTED, ids=lambda c: c.id)
def test_current_is_upstreams_expected_dump(case: Case) -> None:
    path = case.file("expected", "nft")
    assert path is not None
    assert nft_tables(case).text == path.read_text()


def test_repeated_syncs_match_upstream() -> None:
    """Thirteen syncs on one proxier: whole tables, NumOperations and the stale chains; a step marked
    ageStaleChainsBefore runs 2 s later, so chains flushed > 1 s before are deleted first."""
    config, _ = load_config(str(SYNC / "kube-proxy.yaml"))
    proxier = NftProxier(NftVersion.CURRENT, IPV4, config, load_env(str(SYNC / "env.yaml")))
    steps = yaml.safe_load((SYNC / "steps.yaml").read_text())["steps"]
    assert len(steps) == 13
    now = 0.0
    deleted = 0
    for step in steps:
        cluster = load_manifests([str(SYNC / step["services"]), str(SYNC / "node.yaml")])
        node, name = pick_node(cluster, config, None)
        now += 2.0 if step.get("ageStaleChainsBefore") else 0.1
        result = proxier.sync(cluster, node, name, now)
        assert result.full == (step["step"] == 1)
        if step["expected"] is not None:
            got = "\n".join(proxier.table.dump()) + "\n"
            assert got == (SYNC / step["expected"]).read_text(), f"step {step['step']}"
        if "numOperations" in step:
            assert result.operations == step["numOperations"], f"step {step['step']}"
        if "staleChainsAfter" in step:
            assert sorted(proxier.stale_chains) == sorted(step["staleChainsAfter"]), f"step {step['step']}"
        if result.cleanup is not None:
            assert step.get("ageStaleChainsBefore"), f"step {step['step']}"
            deleted += len(result.cleanup.ops)
    assert deleted == 2 + 1 + 3  # svc2's two chains, svc3's old endpoint, svc3's three chains


def test_a_stale_chain_is_kept_until_a_second_has_passed() -> None:
    config, _ = load_config(str(SYNC / "kube-proxy.yaml"))
    proxier = NftProxier(NftVersion.CURRENT, IPV4, config, load_env(str(SYNC / "env.yaml")))
    both = load_manifests([str(SYNC / "services.step2.yaml"), str(SYNC / "node.yaml")])
    fewer = load_manifests([str(SYNC / "services.step3.yaml"), str(SYNC / "node.yaml")])
    node, name = pick_node(both, config, None)
    proxier.sync(both, node, name, 0.0)
    proxier.sync(fewer, node, name, 0.5)
    stale = set(proxier.stale_chains)
    assert stale and all("ns2/svc2" in c for c in stale)
    early = proxier.sync(fewer, node, name, 1.4)  # 0.9 s later: too early
    assert early.cleanup is None and stale <= set(proxier.table.objects)
    # as upstream's loop does, a sync that finds the chain still unused flushes and stamps it again
    assert {op.name for op in early.tx.ops if op.verb == "flush"} == stale
    assert proxier.sync(fewer, node, name, 2.3).cleanup is None  # 0.9 s after the new stamp
    late = proxier.sync(fewer, node, name, 3.4)
    assert late.cleanup is not None and {op.name for op in late.cleanup.ops} == stale
    assert not stale & set(proxier.table.objects) and late.operations == 0
