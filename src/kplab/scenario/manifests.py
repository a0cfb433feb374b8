"""A scenario's cluster as the Kubernetes objects kube-proxy reads.

Services, their EndpointSlices (endpoints = the pods the selector picks, each with its node),
the Nodes and a KubeProxyConfiguration (clusterCIDR for masquerade and KUBE-FORWARD). The emulator
and the lab hand them to `kplab.kubeproxy.generate` as objects (`cluster_objects`, `proxy_config`);
`manifest_text` writes the same objects as the YAML a user would give `kplab rules`, and a test holds
the two equal (what kube-proxy's loader reads from the text is what `cluster_objects` builds).
"""

from __future__ import annotations

from dataclasses import replace

import yaml

from kplab.kubeproxy import Cluster, GeneratedRules, KubeProxyConfig, Version, generate
from kplab.kubeproxy.ipaddr import parse_cidr
from kplab.kubeproxy.nftmode.api import GeneratedNft, generate_nft
from kplab.kubeproxy.nftmode.names import NftVersion
from kplab.kubeproxy.objects import EndpointSlice, Node, Service, ServicePort, SliceEndpoint, SlicePort
from kplab.scenario.operator import DROP_INVALID_TABLE
from kplab.scenario.schema import NodeSpec, PodSpec, Scenario

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


def objects(scenario: Scenario) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for svc in scenario.services:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"namespace": svc.namespace, "name": svc.name},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": svc.cluster_ip,
                    "selector": dict(svc.selector),
                    "ports": [
                        {
                            "name": svc.port_name,
                            "protocol": svc.protocol,
                            "port": svc.port,
                            "targetPort": svc.target_port,
                        }
                    ],
                },
            }
        )
        backends = scenario.pods_matching(svc.selector)
        docs.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "namespace": svc.namespace,
                    "name": f"{svc.name}-1",
                    "labels": {"kubernetes.io/service-name": svc.name},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": [p.ip], "conditions": {"ready": True}, "nodeName": p.node} for p in backends
                ],
                "ports": [{"name": svc.port_name, "protocol": svc.protocol, "port": svc.target_port}],
            }
        )
    for node in scenario.nodes:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": node.name},
                "status": {"addresses": [{"type": "InternalIP", "address": node.ip}]},
            }
        )
    return docs


def manifest_text(scenario: Scenario) -> str:
    return yaml.safe_dump_all(objects(scenario), sort_keys=False)


class _Selector:
    """`Scenario.pods_matching` for many selectors: pods indexed by label, in scenario order."""

    def __init__(self, pods: tuple[PodSpec, ...] | list[PodSpec]) -> None:
        self.by_label: dict[tuple[str, str], list[PodSpec]] = {}
        self.all = list(pods)
        for pod in pods:
            for item in pod.labels.items():
                self.by_label.setdefault(item, []).append(pod)

    def matching(self, selector: dict[str, str]) -> list[PodSpec]:
        if not selector:
            return list(self.all)
        lists = [self.by_label.get(item, []) for item in selector.items()]
        fewest = min(lists, key=len)
        return [p for p in fewest if all(p.labels.get(k) == v for k, v in selector.items())]


def cluster_objects(scenario: Scenario) -> Cluster:
    """The objects of `objects(scenario)`, built directly (no YAML text in between)."""
    cluster = Cluster()
    pods = _Selector(scenario.pods)
    for svc in scenario.services:
        cluster.services.append(
            Service(
                namespace=svc.namespace,
                name=svc.name,
                type="ClusterIP",
                cluster_ips=(svc.cluster_ip,),
                ports=(ServicePort(svc.port_name, svc.protocol, svc.port),),
            )
        )
        endpoints = tuple(SliceEndpoint((p.ip,), node_name=p.node) for p in pods.matching(svc.selector))
        port = SlicePort(svc.port_name, svc.protocol, svc.target_port)
        cluster.slices.append(
            EndpointSlice(svc.namespace, f"{svc.name}-1", svc.name, "IPv4", endpoints, (port,))
        )
    for node in scenario.nodes:
        cluster.nodes.append(Node(node.name, (("InternalIP", node.ip),)))
    return cluster


def proxy_config(scenario: Scenario, node: NodeSpec) -> KubeProxyConfig:
    """The node's KubeProxyConfiguration: iptables mode, its name, the cluster CIDR."""
    return KubeProxyConfig(hostname_override=node.name, cluster_cidr=parse_cidr(scenario.cluster_cidr) or "")


def shared_key(scenario: Scenario, node: NodeSpec) -> tuple[str, int]:
    """What a node's kube-proxy rules depend on besides the cluster: nodes with equal keys hold equal
    rules. A scenario's Services are ClusterIP with cluster-wide traffic policies and no NodePort, so
    the node's name and addresses change nothing (they pick local endpoints and NodePort addresses);
    only the kube-proxy version and the node's `nf_conntrack_tcp_be_liberal` do. A test holds every
    node's own rules equal to the shared ones."""
    return scenario.kube_proxy_version, scenario.node_sysctls(node).get(BE_LIBERAL, 0)


def node_rules(scenario: Scenario, node: NodeSpec, cluster: Cluster | None = None) -> GeneratedRules:
    """The rules kube-proxy (the scenario's version) writes on `node`, with the jump rules a node
    holds outside kube-proxy's restore input (`--full-node`)."""
    return generate(
        cluster or cluster_objects(scenario),
        config=proxy_config(scenario, node),
        version=Version(scenario.kube_proxy_version),
        sysctls={BE_LIBERAL: shared_key(scenario, node)[1]},
        node_name=node.name,
        full_node=True,
    )


def node_nft(scenario: Scenario, node: NodeSpec, cluster: Cluster | None = None) -> GeneratedNft:
    """The tables kube-proxy's nftables mode (the scenario's version) writes on `node`."""
    config = proxy_config(scenario, node)
    config = replace(config, mode="nftables", cluster_cidrs=(config.cluster_cidr,))
    return generate_nft(
        cluster or cluster_objects(scenario),
        config=config,
        version=NftVersion(scenario.kube_proxy_version),
        node_name=node.name,
    )


def node_nft_text(scenario: Scenario, node: NodeSpec, cluster: Cluster | None = None) -> str:
    """What the node's nftables holds besides iptables' own tables: kube-proxy's tables, and the
    operator's drop table when the scenario has one."""
    text = node_nft(scenario, node, cluster).text
    return text + DROP_INVALID_TABLE if scenario.operator_drop_invalid else text
