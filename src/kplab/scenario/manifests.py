"""A scenario's cluster as the Kubernetes objects kube-proxy reads.

Services, their EndpointSlices (endpoints = the pods the selector picks, each with its node),
the Nodes and a KubeProxyConfiguration (clusterCIDR for masquerade and KUBE-FORWARD): written as
YAML text and read back through `kplab.kubeproxy`'s own loader, so the emulator and the lab build
each node's rules exactly as `kplab rules` would from a user's manifests.
"""

from __future__ import annotations

import yaml

from kplab.kubeproxy import Cluster, GeneratedRules, Version, generate, load_manifest_text
from kplab.scenario.schema import NodeSpec, Scenario

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


def cluster_objects(scenario: Scenario) -> Cluster:
    return load_manifest_text(manifest_text(scenario), f"{scenario.source} (generated manifests)")


def node_rules(scenario: Scenario, node: NodeSpec, cluster: Cluster | None = None) -> GeneratedRules:
    """The rules kube-proxy (the scenario's version) writes on `node`, with the jump rules a node
    holds outside kube-proxy's restore input (`--full-node`)."""
    config_doc = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "hostnameOverride": node.name,
        "clusterCIDR": scenario.cluster_cidr,
    }
    config = load_manifest_text(yaml.safe_dump(config_doc), f"{scenario.source} (kube-proxy config)").configs[
        0
    ]
    sysctls = scenario.node_sysctls(node)
    return generate(
        cluster or cluster_objects(scenario),
        config=config,
        version=Version(scenario.kube_proxy_version),
        sysctls={BE_LIBERAL: sysctls.get(BE_LIBERAL, 0)},
        node_name=node.name,
        full_node=True,
    )
