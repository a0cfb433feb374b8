"""Build a running emulated cluster from a Scenario.

Topology: every pod has a veth-like link to its node (`veth-<pod>` on the node, a /32 route to
it, as Calico-style CNIs route); every node has an uplink to a switch (the fabric), which forwards
by node address and pod CIDR. Each node runs the rules its kube-proxy version writes
(`kplab.scenario.manifests.node_rules`, the same generator as `kplab rules --full-node`), a
conntrack table with the node's kernel profile and sysctls, and the engine's seeded state.
Rules that are the same on several nodes (`manifests.shared_key`) are generated, parsed and compiled
once and the compiled engine is shared (it is immutable; each node has its own `EngineState`), so a
cluster costs services + nodes, not services x nodes. Servers listen on the backend pods; clients
download through the Service VIP or, for the control case, straight from the backend pod IPs.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from kplab.apps.download import DownloadWorkload
from kplab.apps.fileserver import FileServer
from kplab.kubeproxy import Cluster as KubeObjects
from kplab.net.fabric import Switch
from kplab.net.link import Link
from kplab.net.node import Node
from kplab.net.pod import Pod
from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.conntrack import Conntrack, Sysctls, get_profile
from kplab.netfilter.engine import Engine
from kplab.netfilter.iptables_save import parse
from kplab.netfilter.model import Rule, Ruleset
from kplab.netfilter.nft.compile import compile_nft
from kplab.netfilter.nft.text import parse_text
from kplab.netfilter.state import EngineState
from kplab.packet import ip, parse_cidr
from kplab.scenario.manifests import cluster_objects, node_nft_text, node_rules, shared_key
from kplab.scenario.schema import LinkSpec, NodeSpec, Scenario
from kplab.sim.rng import derive_rng
from kplab.sim.scheduler import Scheduler
from kplab.tcp import TcpConfig


@dataclass(slots=True)
class EmulatedCluster:
    scenario: Scenario
    sched: Scheduler
    nodes: dict[str, Node]
    pods: dict[str, Pod]
    switch: Switch
    links: dict[str, Link] = field(default_factory=dict)
    servers: dict[str, FileServer] = field(default_factory=dict)
    workloads: dict[str, list[DownloadWorkload]] = field(default_factory=dict)

    def run(self) -> None:
        self.sched.run(until_ns=self.scenario.duration_ns)


def _link(sched: Scheduler, seed: int, name: str, spec: LinkSpec) -> Link:
    return Link(sched, name, derive_rng(seed, f"link/{name}"), spec.rate_bps, spec.delay_ns,
                spec.queue_packets, faults=spec.faults)  # fmt: skip


def cni_ruleset(cluster_cidr: str) -> Ruleset:
    """The CNI's rule for pod traffic leaving the cluster (ip-masq-agent style): nat POSTROUTING,
    source in the cluster CIDR, destination outside it, MASQUERADE to the node's address."""
    text = (
        "*nat\n:POSTROUTING ACCEPT [0:0]\n"
        f"-A POSTROUTING -s {cluster_cidr} ! -d {cluster_cidr} -m comment "
        '--comment "kplab: CNI masquerade for traffic leaving the cluster" -j MASQUERADE\nCOMMIT\n'
    )
    return parse(text, "<cni>")


def cni_masquerade(cluster_cidr: str) -> list[Rule]:
    return cni_ruleset(cluster_cidr).tables["nat"].chains["POSTROUTING"].rules


def node_ruleset(s: Scenario, spec: NodeSpec, objects: KubeObjects) -> Ruleset:
    """What the node's iptables holds: kube-proxy's rules (`--full-node`) and the CNI's masquerade."""
    ruleset = node_rules(s, spec, objects).ruleset()
    ruleset.table("nat").chain("POSTROUTING").rules.extend(cni_masquerade(s.cluster_cidr))
    return ruleset


def _node(s: Scenario, spec: NodeSpec, sched: Scheduler, engine: Engine) -> Node:
    ct = Conntrack(
        profile=get_profile(s.node_kernel(spec), host_release=platform.release()),
        sysctls=Sysctls(),
        rng=derive_rng(s.seed, f"conntrack/{spec.name}"),
    )
    for key, value in s.node_sysctls(spec).items():
        ct.set_sysctl(key, value)
    return Node(spec.name, sched, engine, ct, EngineState(derive_rng(s.seed, f"rules/{spec.name}")))


def _host(s: Scenario, name: str, node: str, addr: str, sched: Scheduler) -> Pod:
    tcp = TcpConfig(rcvbuf_bytes=s.tcp_rcvbuf_bytes) if s.tcp_rcvbuf_bytes else TcpConfig()
    return Pod(name, node, ip(addr), sched, derive_rng(s.seed, f"tcp/{name}"), tcp)


def build(s: Scenario) -> EmulatedCluster:
    sched = Scheduler(derive_rng(s.seed, "scheduler"))
    objects = cluster_objects(s)
    switch = Switch()
    cluster = EmulatedCluster(s, sched, {}, {}, switch)
    engines: dict[tuple[str, int], Engine] = {}
    nft_mode = s.kube_proxy_mode == "nftables"
    for spec in s.nodes:
        key = shared_key(s, spec)
        engine = engines.get(key)
        if engine is None:
            ruleset = cni_ruleset(s.cluster_cidr) if nft_mode else node_ruleset(s, spec, objects)
            engine = engines[key] = compile_ruleset(ruleset)
        node = cluster.nodes[spec.name] = _node(s, spec, sched, engine)
        if nft_mode:  # one table per node: its nodeport-ips set holds the node's own address
            text = node_nft_text(s, spec, objects)
            node.nft = compile_nft(parse_text(text, f"{s.source} (kube-proxy nftables)"))
        uplink = cluster.links[f"{spec.name}-fabric"] = _link(
            sched, s.seed, f"{spec.name}-fabric", s.fabric_link
        )
        uplink.attach(node.receiver("eth0"), switch.receive)
        node.add_interface("eth0", ip(spec.ip), uplink.a_to_b.send)
        node.add_route(0, 0, "eth0")
        switch.add_port([(ip(spec.ip), 0xFFFFFFFF), parse_cidr(spec.pod_cidr)], uplink.b_to_a.send)
    for pspec in s.pods:
        pod = cluster.pods[pspec.name] = _host(s, pspec.name, pspec.node, pspec.ip, sched)
        node = cluster.nodes[pspec.node]
        veth = cluster.links[f"{pspec.name}-veth"] = _link(sched, s.seed, f"{pspec.name}-veth", s.pod_link)
        veth.attach(pod.receive, node.receiver(f"veth-{pspec.name}"))
        pod.out = veth.a_to_b.send
        node.add_interface(f"veth-{pspec.name}", None, veth.b_to_a.send)
        node.add_route(pod.ip, 0xFFFFFFFF, f"veth-{pspec.name}")
    for hspec in s.externals:
        host = cluster.pods[hspec.name] = _host(s, hspec.name, "", hspec.ip, sched)
        wire = cluster.links[f"{hspec.name}-fabric"] = _link(
            sched, s.seed, f"{hspec.name}-fabric", s.fabric_link
        )
        wire.attach(host.receive, switch.receive)
        host.out = wire.a_to_b.send
        switch.add_port([(host.ip, 0xFFFFFFFF)], wire.b_to_a.send)
    _start_workload(cluster)
    return cluster


def _start_workload(cluster: EmulatedCluster) -> None:
    s, w = cluster.scenario, cluster.scenario.workload
    svc = s.service(w.service)
    backends = s.hosts_matching(w.server_selector)
    for spec in backends:
        pod = cluster.pods[spec.name]
        cluster.servers[spec.name] = FileServer(
            pod.tcp, pod.ip, svc.target_port, w.file_bytes, w.request_bytes
        )
    read_rate = w.read_rate_bps or None
    lane = 0
    for spec in s.pods_matching(w.client_selector):
        pod = cluster.pods[spec.name]
        rng = derive_rng(s.seed, f"workload/{spec.name}")
        if w.target == "service":
            targets = [(ip(svc.cluster_ip), svc.port, w.parallel)]
        else:  # the control case: the same downloads, straight to the backends' own addresses
            targets = []
            for _ in range(w.parallel):
                targets.append((ip(backends[lane % len(backends)].ip), svc.target_port, 1))
                lane += 1
        cluster.workloads[spec.name] = [
            DownloadWorkload(
                pod.tcp,
                pod.ip,
                addr,
                port,
                rng,
                w.file_bytes,
                parallel=n,
                repeat=w.downloads,
                spread_ns=w.start_spread_ns,
                read_rate_bps=read_rate,
                request_bytes=w.request_bytes,
            )
            for addr, port, n in targets
        ]
