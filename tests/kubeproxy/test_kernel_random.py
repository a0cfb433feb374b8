"""Random clusters (hypothesis): whatever mix of Service types, traffic policies, affinity, source
ranges, protocols and endpoints, the `--full-node` rules of every version load into the real kernel
and `iptables-save` prints exactly kplab's rendering."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.kubeproxy import Cluster, KubeProxyConfig, NodeEnv, Version, generate
from kplab.kubeproxy.objects import EndpointSlice, Node, Service, ServicePort, SliceEndpoint, SlicePort
from kplab.kubeproxy.savefmt import strip_save_noise
from kplab.lab.kprules import load
from kplab.lab.netns import Lab

NODE = Node("node-a", (("InternalIP", "192.168.1.10"),))
NFACCT = frozenset({"ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"})


@st.composite
def services(draw: st.DrawFn, index: int) -> tuple[Service, EndpointSlice | None]:
    protocol = draw(st.sampled_from(["TCP", "UDP", "SCTP"]))
    stype = draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]))
    node_port = 30000 + index if stype != "ClusterIP" else 0
    name = f"s{index}"
    port_name = draw(st.sampled_from(["", "http"]))
    lb = (f"203.0.113.{index + 1}",) if stype == "LoadBalancer" else ()
    service = Service(
        "ns",
        name,
        stype,
        (f"10.96.0.{index + 1}",),
        (ServicePort(port_name, protocol, 80, node_port),),
        external_ips=draw(st.sampled_from([(), (f"198.51.100.{index + 1}",)])),
        lb_ingress_ips=lb,
        lb_source_ranges=draw(st.sampled_from([(), ("192.168.0.0/16",), ("10.0.0.0/8", "172.16.0.0/12")])),
        session_affinity=draw(st.sampled_from(["None", "ClientIP"])),
        external_traffic_policy=draw(st.sampled_from(["Cluster", "Local"])),
        internal_traffic_policy=draw(st.sampled_from(["Cluster", "Local"])),
        health_check_node_port=32000 + index if stype == "LoadBalancer" else 0,
    )
    count = draw(st.integers(0, 4))
    if count == 0 and draw(st.booleans()):
        return service, None
    endpoints = tuple(
        SliceEndpoint(
            (f"10.244.{index}.{i + 2}",),
            node_name=draw(st.sampled_from(["node-a", "node-b"])),
            ready=draw(st.sampled_from([True, True, False])),
            terminating=draw(st.booleans()),
        )
        for i in range(count)
    )
    slice_ = EndpointSlice(
        "ns", f"{name}-1", name, "IPv4", endpoints, (SlicePort(port_name, protocol, 8080),)
    )
    return service, slice_


@st.composite
def clusters(draw: st.DrawFn) -> tuple[Cluster, KubeProxyConfig, NodeEnv]:
    cluster = Cluster(nodes=[NODE])
    for i in range(draw(st.integers(1, 5))):
        service, slice_ = draw(services(i))
        cluster.services.append(service)
        if slice_ is not None:
            cluster.slices.append(slice_)
    config = KubeProxyConfig(
        cluster_cidr=draw(st.sampled_from(["", "10.244.0.0/16"])),
        masquerade_all=draw(st.booleans()),
        localhost_node_ports=draw(st.booleans()),
    )
    env = NodeEnv(has_random_fully=draw(st.booleans()), nfacct=draw(st.sampled_from([frozenset(), NFACCT])))
    return cluster, config, env


@pytest.mark.kernel
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=clusters(), version=st.sampled_from(list(Version)))
def test_random_clusters_load_and_save_as_rendered(
    lab: Lab, case: tuple[Cluster, KubeProxyConfig, NodeEnv], version: Version
) -> None:
    cluster, config, env = case
    ns = lab.netns(f"r{len(lab.namespaces)}")
    rules = generate(cluster, config=config, env=env, version=version, full_node=True)
    load(ns, rules, env.nfacct)
    real = strip_save_noise(ns.run(["iptables-save"]).stdout)
    mine = rules.save_text().splitlines()
    assert real == mine, "\n".join(
        difflib.unified_diff(mine, real, "kplab", "iptables-save", n=0, lineterm="")
    )
