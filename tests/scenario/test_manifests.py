"""The scenario's Kubernetes objects are built directly (no YAML round trip) and nodes share the rules
they hold in common: both are held equal to the slow, obvious way."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from kplab.kubeproxy import Cluster, load_manifest_text
from kplab.kubeproxy.objects import GENERATED
from kplab.net.cluster import build
from kplab.scenario.load import parse
from kplab.scenario.manifests import cluster_objects, manifest_text, node_rules, shared_key
from kplab.scenario.schema import PodSpec, Scenario, ServiceSpec

BASE = """
name: three
kube_proxy_version: current
nodes:
  - {name: node-a, ip: 172.16.0.1, pod_cidr: 10.0.0.0/24}
  - {name: node-b, ip: 172.16.0.2, pod_cidr: 10.0.1.0/24}
  - name: node-c
    ip: 172.16.0.3
    pod_cidr: 10.0.2.0/24
    sysctls: {net.netfilter.nf_conntrack_tcp_be_liberal: 1}
pods:
  - {name: client-1, node: node-a, ip: 10.0.0.2, labels: {role: client}}
  - {name: server-1, node: node-b, ip: 10.0.1.2, labels: {app: server, tier: web}}
  - {name: server-2, node: node-c, ip: 10.0.2.2, labels: {app: server}}
services:
  - {name: server, cluster_ip: 192.168.0.2, port: 80, target_port: 8080, selector: {app: server}}
  - {name: web, cluster_ip: 192.168.0.3, port: 443, selector: {app: server, tier: web}}
  - {name: none, cluster_ip: 192.168.0.4, port: 53, protocol: UDP, selector: {app: nothing}}
workload:
  service: default/server
  server_selector: {app: server}
  client_selector: {role: client}
"""


def _without_origins(cluster: Cluster) -> Cluster:
    return Cluster(
        services=[replace(s, origin=GENERATED) for s in cluster.services],
        slices=[replace(s, origin=GENERATED) for s in cluster.slices],
        endpoints=list(cluster.endpoints),
        nodes=[replace(n, origin=GENERATED) for n in cluster.nodes],
        configs=list(cluster.configs),
        notes=list(cluster.notes),
    )


def _loaded(s: Scenario) -> Cluster:
    return _without_origins(load_manifest_text(manifest_text(s), "generated.yaml"))


def test_objects_are_what_the_loader_reads_from_the_manifests() -> None:
    s = parse(BASE, "three.yaml")
    assert cluster_objects(s) == _loaded(s)


labels = st.dictionaries(st.sampled_from(["app", "tier", "role"]), st.sampled_from(["a", "b"]), max_size=2)


@settings(max_examples=40, deadline=None)
@given(
    pod_labels=st.lists(labels, min_size=1, max_size=8), selectors=st.lists(labels, min_size=1, max_size=5)
)
def test_label_index_picks_what_pods_matching_picks(
    pod_labels: list[dict[str, str]], selectors: list[dict[str, str]]
) -> None:
    s = parse(BASE, "three.yaml")
    pods = tuple(PodSpec(f"p{i}", "node-a", f"10.0.0.{i + 10}", lab) for i, lab in enumerate(pod_labels))
    services = tuple(
        ServiceSpec("default", f"s{i}", f"192.168.1.{i + 1}", 80, 80, sel) for i, sel in enumerate(selectors)
    )
    s = replace(s, pods=pods, services=services)
    assert cluster_objects(s) == _loaded(s)
    for svc, es in zip(s.services, cluster_objects(s).slices, strict=True):
        assert [e.addresses[0] for e in es.endpoints] == [p.ip for p in s.pods_matching(svc.selector)]


def test_nodes_with_the_same_key_hold_the_same_rules() -> None:
    """Each node's own generated rules (with its name and address) equal those of the first node with
    its key, in both rule layouts; node-c (be_liberal=1) has another key and other rules."""
    s = parse(BASE, "three.yaml")
    for version in ("current", "1.15"):
        sv = replace(s, kube_proxy_version=version)
        objects = cluster_objects(sv)
        first: dict[tuple[str, int], str] = {}
        for node in sv.nodes:
            text = node_rules(sv, node, objects).restore_text
            assert first.setdefault(shared_key(sv, node), text) == text, (version, node.name)
        assert len(first) == 2


def test_a_built_cluster_shares_one_engine_per_key() -> None:
    s = parse(BASE, "three.yaml")
    cluster = build(s)
    a, b, c = (cluster.nodes[n] for n in ("node-a", "node-b", "node-c"))
    assert a.engine is b.engine
    assert a.engine is not c.engine
