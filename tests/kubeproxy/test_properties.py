"""Properties of the generated rules over random clusters (no kernel needed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kplab.kubeproxy import Cluster, KubeProxyConfig, NodeEnv, Version, generate
from kplab.kubeproxy.canon import check_jumps, sort_dump

from .test_kernel_random import clusters

Case = tuple[Cluster, KubeProxyConfig, NodeEnv]


@settings(max_examples=150, deadline=None)
@given(case=clusters())
def test_current_output_passes_upstream_consistency_checks(case: Case) -> None:
    cluster, config, env = case
    assert check_jumps(generate(cluster, config=config, env=env).restore_text) == []


@settings(max_examples=60, deadline=None)
@given(case=clusters(), version=st.sampled_from(list(Version)))
def test_service_order_does_not_matter_after_the_canonical_sort(case: Case, version: Version) -> None:
    """kube-proxy walks its services in Go map order; the sorted dump must not depend on it."""
    cluster, config, env = case
    shuffled = Cluster(list(reversed(cluster.services)), list(reversed(cluster.slices)), nodes=cluster.nodes)
    one = generate(cluster, config=config, env=env, version=version).restore_text
    two = generate(shuffled, config=config, env=env, version=version).restore_text
    assert sort_dump(one) == sort_dump(two)


@settings(max_examples=60, deadline=None)
@given(case=clusters(), version=st.sampled_from(list(Version)))
def test_generation_is_deterministic(case: Case, version: Version) -> None:
    cluster, config, env = case
    first = generate(cluster, config=config, env=env, version=version, full_node=True)
    second = generate(cluster, config=config, env=env, version=version, full_node=True)
    assert first.restore_text == second.restore_text and first.save_text() == second.save_text()
