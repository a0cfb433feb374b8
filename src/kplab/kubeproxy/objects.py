"""Plain data for the objects kube-proxy reads: Service, EndpointSlice, core/v1 Endpoints, Node,
KubeProxyConfiguration, and the node environment (what kube-proxy detects on the host).

Only the fields that change kube-proxy's iptables output are kept. Values are already validated
and defaulted the way the API server and kube-proxy default them (see `load.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an object came from: file, 1-based document number, 1-based line of the document."""

    file: str
    doc: int
    line: int

    def __str__(self) -> str:
        return f"{self.file}:doc {self.doc}"


GENERATED = Origin("<generated>", 0, 0)


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    protocol: str  # TCP, UDP or SCTP (API spelling)
    port: int
    node_port: int = 0


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    external_ips: tuple[str, ...] = ()
    lb_ingress_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip in VIP mode
    lb_source_ranges: tuple[str, ...] = ()
    session_affinity: str = "None"
    affinity_timeout_s: int = 10800
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    health_check_node_port: int = 0
    origin: Origin = GENERATED


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    addresses: tuple[str, ...]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None
    zone_hints: frozenset[str] = frozenset()
    node_hints: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SlicePort:
    name: str
    protocol: str
    port: int | None


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str
    address_type: str = "IPv4"
    endpoints: tuple[SliceEndpoint, ...] = ()
    ports: tuple[SlicePort, ...] = ()
    origin: Origin = GENERATED


@dataclass(frozen=True, slots=True)
class EndpointAddress:
    ip: str
    node_name: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSubset:
    addresses: tuple[EndpointAddress, ...] = ()
    ports: tuple[SlicePort, ...] = ()  # notReadyAddresses are never proxied, so not kept


@dataclass(frozen=True, slots=True)
class Endpoints:
    """core/v1 Endpoints, which kube-proxy v1.14/v1.15 read (named like its Service)."""

    namespace: str
    name: str
    subsets: tuple[EndpointSubset, ...] = ()
    origin: Origin = GENERATED


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address) in status order
    pod_cidrs: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    origin: Origin = GENERATED

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


@dataclass(frozen=True, slots=True)
class ServiceCIDR:
    """networking.k8s.io/v1 ServiceCIDR: the ranges ClusterIPs are allocated from (nftables mode
    drops traffic to the unallocated addresses in them)."""

    name: str
    cidrs: tuple[str, ...] = ()
    origin: Origin = GENERATED


@dataclass(frozen=True, slots=True)
class KubeProxyConfig:
    """The KubeProxyConfiguration fields that shape the rules (v1alpha1 names)."""

    hostname_override: str = ""
    mode: str = "iptables"  # iptables or nftables (ipvs and others are written as iptables)
    cluster_cidr: str = ""  # the IPv4 clusterCIDR (iptables mode is IPv4 only)
    cluster_cidrs: tuple[str, ...] = ()  # every family's clusterCIDR, in order
    detect_local_mode: str = "ClusterCIDR"
    bridge_interface: str = ""
    interface_name_prefix: str = ""
    masquerade_all: bool = False
    masquerade_bit: int = 14
    localhost_node_ports: bool = True
    nft_masquerade_all: bool = False  # nftables.masqueradeAll
    nft_masquerade_bit: int = 14  # nftables.masqueradeBit
    node_port_addresses: tuple[str, ...] = ()
    tcp_be_liberal: bool = False
    origin: Origin = GENERATED


@dataclass(frozen=True, slots=True)
class NodeEnv:
    """What kube-proxy detects on its host rather than reads from its configuration."""

    interfaces: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, ("192.168.0.2/24", ...))
    has_random_fully: bool = False
    nfacct: frozenset[str] = frozenset()  # nfacct counters that exist on the node
    sysctls: tuple[tuple[str, int], ...] = ()
    large_cluster_threshold: int = 1000
    masquerade_mark: str | None = None  # the test harness's mark string, e.g. "0x4000"
    ip_family: str | None = None  # the test harness's single family (IPv4 or IPv6); None = as the inputs

    def sysctl(self, key: str, default: int = 0) -> int:
        return dict(self.sysctls).get(key, default)


@dataclass(slots=True)
class Cluster:
    """Everything loaded from manifests, in file order, plus notes about what was skipped."""

    services: list[Service] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    endpoints: list[Endpoints] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    configs: list[KubeProxyConfig] = field(default_factory=list)
    service_cidrs: list[ServiceCIDR] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Cluster) -> None:
        self.services.extend(other.services)
        self.slices.extend(other.slices)
        self.endpoints.extend(other.endpoints)
        self.nodes.extend(other.nodes)
        self.configs.extend(other.configs)
        self.service_cidrs.extend(other.service_cidrs)
        self.notes.extend(other.notes)
