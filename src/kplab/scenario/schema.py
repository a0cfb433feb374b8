"""The scenario model: one description that both the emulator and the real-kernel lab build from.

A scenario names the cluster (nodes, pods, Services), the kube-proxy version and configuration,
the kernel profile and sysctls per node, the links and their faults, and the workload. Plain,
validated data; `load.py` reads it from YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Faults:
    """Seeded fault models of a link direction (the emulator's `net.link.Channel` and the lab's netem
    both read this one class). Shares are probabilities per packet."""

    loss: float = 0.0
    duplicate: float = 0.0
    slow_share: float = 0.0  # share of packets that take a slower path (reordering)
    slow_delay_ns: int = 0  # extra delay on that path
    jitter_ns: int = 0  # uniform extra delay in [0, jitter_ns]


@dataclass(frozen=True, slots=True)
class LinkSpec:
    rate_bps: int = 10_000_000_000
    delay_ns: int = 20_000
    queue_packets: int = 1000
    faults: Faults = Faults()


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    ip: str
    pod_cidr: str
    kernel: str | None = None  # overrides Scenario.kernel
    sysctls: dict[str, int] = field(default_factory=dict)  # overrides Scenario.sysctls


@dataclass(frozen=True, slots=True)
class PodSpec:
    name: str
    node: str
    ip: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    namespace: str
    name: str
    cluster_ip: str
    port: int
    target_port: int
    selector: dict[str, str]
    port_name: str = "http"
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Workload:
    """Download clients against a file server.

    Every pod matching `client_selector` runs `parallel` connections one after another
    `downloads` times each, to the Service (`target: service`) or straight to the backend pod
    IPs (`target: pod`, the control case with no Service NAT).
    """

    server_selector: dict[str, str]
    client_selector: dict[str, str]
    service: str  # "namespace/name"
    target: str = "service"  # "service" | "pod"
    file_bytes: int = 10_000_000
    request_bytes: int = 100
    parallel: int = 1
    downloads: int = 1
    read_rate_bps: int = 0  # 0: the application reads as fast as data arrives
    start_spread_ns: int = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    nodes: tuple[NodeSpec, ...]
    pods: tuple[PodSpec, ...]
    services: tuple[ServiceSpec, ...]
    workload: Workload
    seed: int = 1
    duration_ns: int = 60_000_000_000
    kernel: str = "5.4"
    kube_proxy_version: str = "1.14"
    kube_proxy_mode: str = "iptables"  # iptables | nftables (versions 1.33 and current)
    cluster_cidr: str = "10.0.0.0/16"
    sysctls: dict[str, int] = field(default_factory=dict)
    pod_link: LinkSpec = LinkSpec()
    fabric_link: LinkSpec = LinkSpec()
    tcp_rcvbuf_bytes: int = 0  # every host's TCP receive buffer (0: kplab.tcp's default)
    externals: tuple[PodSpec, ...] = ()  # hosts outside the cluster, on the fabric (node "")
    # the operator's own `ct state invalid drop` table (kplab.scenario.operator): nftables mode's
    # drop_invalid variant
    operator_drop_invalid: bool = False
    source: str = "<builtin>"

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def node_sysctls(self, node: NodeSpec) -> dict[str, int]:
        return {**self.sysctls, **node.sysctls}

    def node_kernel(self, node: NodeSpec) -> str:
        return node.kernel or self.kernel

    def pods_matching(self, selector: dict[str, str]) -> list[PodSpec]:
        return [p for p in self.pods if all(p.labels.get(k) == v for k, v in selector.items())]

    def hosts_matching(self, selector: dict[str, str]) -> list[PodSpec]:
        """Pods and external hosts whose labels match (workload servers may live outside)."""
        hosts = (*self.pods, *self.externals)
        return [p for p in hosts if all(p.labels.get(k) == v for k, v in selector.items())]

    def service(self, ref: str) -> ServiceSpec:
        for svc in self.services:
            if f"{svc.namespace}/{svc.name}" == ref:
                return svc
        raise KeyError(ref)


NFT_VERSIONS = ("1.33", "current")


def with_proxy_mode(s: Scenario, mode: str) -> Scenario:
    """`s` with kube-proxy in `mode`; a version the mode never had becomes `current`."""
    nft = mode == "nftables"
    version = s.kube_proxy_version
    if nft != (version in NFT_VERSIONS) and version != "current":
        version = "current"
    return replace(s, kube_proxy_mode=mode, kube_proxy_version=version)
