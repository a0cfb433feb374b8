"""From objects to what one node's kube-proxy (IPv4 family) works with: service ports with their
endpoints (`svcPortMap` / `endpointsMap`) and the node's settings (`NodeContext`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.kubeproxy.endpoints import EndpointInfo, legacy_endpoints, slice_endpoints
from kplab.kubeproxy.ipaddr import in_cidr, is_ipv4, parse_cidr
from kplab.kubeproxy.names import Version, service_port_name
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, Node, NodeEnv, Origin, Service, ServicePort

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"


@dataclass(slots=True)
class SvcPort:
    """One service port as `servicePortInfo` holds it (addresses already of the IPv4 family)."""

    spn: str
    protocol: str  # lower case: tcp, udp, sctp
    port: int
    cluster_ip: str
    external_ips: list[str]
    lb_ips: list[str]
    source_ranges: list[str]
    node_port: int
    hc_node_port: int
    affinity_s: int  # 0 unless sessionAffinity ClientIP
    etp_local: bool
    itp_local: bool
    only_local_legacy: bool  # v1.15 OnlyNodeLocalEndpoints
    origin: Origin
    endpoints: list[EndpointInfo] = field(default_factory=list)

    @property
    def externally_accessible(self) -> bool:
        return self.node_port != 0 or bool(self.lb_ips) or bool(self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        return not self.itp_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.itp_local or (self.etp_local and self.externally_accessible)


@dataclass(frozen=True, slots=True)
class LocalDetector:
    """`LocalTrafficDetector`: the words of IfLocal() and IfNotLocal()."""

    if_local: tuple[str, ...]
    if_not_local: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeContext:
    version: Version
    node_name: str
    node_ip: str
    zone: str
    config: KubeProxyConfig
    env: NodeEnv
    mark: str  # current: "0x00004000"; v1.15: "0x00004000/0x00004000"
    liberal: bool
    detector: LocalDetector | None
    localhost_node_ports: bool
    node_port_match_all: bool
    node_port_ips: tuple[str, ...]


def interfaces_of(env: NodeEnv, node: Node | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if env.interfaces or node is None:
        return env.interfaces
    addrs = tuple(f"{a}/32" for t, a in node.addresses if t in ("InternalIP", "ExternalIP") and is_ipv4(a))
    return (("lo", ("127.0.0.1/8",)), ("eth0", addrs))


def primary_node_ip(node: Node | None) -> str:
    """The first IPv4 InternalIP, else ExternalIP (`GetNodeHostIPs`); 127.0.0.1 as kube-proxy falls back."""
    for wanted in ("InternalIP", "ExternalIP"):
        for kind, addr in node.addresses if node else ():
            if kind == wanted and is_ipv4(addr):
                return addr
    return "127.0.0.1"


def node_context(
    version: Version, config: KubeProxyConfig, env: NodeEnv, node: Node | None, node_name: str
) -> NodeContext:
    node_ip = primary_node_ip(node)
    cidrs = [c for c in (_np_cidr(c, node_ip) for c in config.node_port_addresses) if c and is_ipv4(c)]
    match_all = not cidrs or "0.0.0.0/0" in cidrs
    # NewNodePortAddresses: a CIDR whose network is a loopback address or that holds 127.0.0.0
    has_loopback = match_all or any(c.startswith("127.") or in_cidr("127.0.0.0", c) for c in cidrs)
    ips: list[str] = []
    for cidr in [] if match_all else cidrs:
        for _, addrs in interfaces_of(env, node):
            for a in addrs:
                ip = a.partition("/")[0]
                if is_ipv4(ip) and in_cidr(ip, cidr) and ip not in ips:
                    ips.append(ip)
    bit_value = 1 << config.masquerade_bit
    mark = env.masquerade_mark or f"0x{bit_value:08x}"
    liberal = env.sysctl(BE_LIBERAL) != 0 or config.tcp_be_liberal
    return NodeContext(
        version=version,
        node_name=node_name,
        node_ip=node_ip,
        zone=node.label("topology.kubernetes.io/zone") if node else "",
        config=config,
        env=env,
        mark=f"{mark}/{mark}" if version.legacy else mark,
        liberal=liberal and not version.legacy,
        detector=local_detector(config, node, version),
        localhost_node_ports=config.localhost_node_ports and has_loopback and not version.legacy,
        node_port_match_all=match_all,
        node_port_ips=tuple(ips),
    )


def _np_cidr(text: str, node_ip: str) -> str | None:
    return f"{node_ip}/32" if text == "primary" else parse_cidr(text)


def local_detector(config: KubeProxyConfig, node: Node | None, version: Version) -> LocalDetector | None:
    mode = "ClusterCIDR" if version.legacy else config.detect_local_mode
    if mode == "ClusterCIDR" and config.cluster_cidr:
        return LocalDetector(("-s", config.cluster_cidr), ("!", "-s", config.cluster_cidr))
    if mode == "NodeCIDR" and node is not None:
        v4 = [c for c in node.pod_cidrs if is_ipv4(c)]
        if v4:
            return LocalDetector(("-s", v4[0]), ("!", "-s", v4[0]))
    if mode == "BridgeInterface" and config.bridge_interface:
        return LocalDetector(("-i", config.bridge_interface), ("!", "-i", config.bridge_interface))
    if mode == "InterfaceNamePrefix" and config.interface_name_prefix:
        name = config.interface_name_prefix + "+"
        return LocalDetector(("-i", name), ("!", "-i", name))
    return None


def service_ports(cluster: Cluster, ctx: NodeContext, family: int = 4) -> list[SvcPort]:
    """The service ports of one IP family (4 or 6; iptables mode is 4 only) with their endpoints,
    sorted by service port name and protocol."""
    if ctx.version.legacy:
        endpoints = legacy_endpoints(cluster, ctx.node_name)
    else:
        endpoints = slice_endpoints(cluster, ctx.node_name, family)
    v4 = family == 4
    out: list[SvcPort] = []
    for svc in cluster.services:
        cluster_ip = next(
            (ip for ip in svc.cluster_ips if ip not in ("None", "") and is_ipv4(ip) == v4), None
        )
        if svc.type == "ExternalName" or cluster_ip is None:
            continue
        for port in svc.ports:
            sp = _svc_port(svc, port, cluster_ip, ctx.version, v4)
            key = (svc.namespace, svc.name, port.name, "" if ctx.version.legacy else port.protocol)
            sp.endpoints = list(endpoints.get(key, ()))
            out.append(sp)
    out.sort(key=lambda s: (s.spn, s.protocol))
    return out


def _svc_port(svc: Service, port: ServicePort, cluster_ip: str, version: Version, v4: bool) -> SvcPort:
    accessible = svc.type in ("NodePort", "LoadBalancer") or bool(svc.external_ips)
    etp_local = accessible and svc.external_traffic_policy == "Local"
    return SvcPort(
        spn=service_port_name(svc.namespace, svc.name, port.name, version),
        protocol=port.protocol.lower(),
        port=port.port,
        cluster_ip=cluster_ip,
        external_ips=[ip for ip in svc.external_ips if is_ipv4(ip) == v4],
        lb_ips=[ip for ip in svc.lb_ingress_ips if is_ipv4(ip) == v4],
        source_ranges=[c for c in svc.lb_source_ranges if is_ipv4(c) == v4],
        node_port=port.node_port,
        hc_node_port=svc.health_check_node_port if svc.type == "LoadBalancer" and etp_local else 0,
        affinity_s=svc.affinity_timeout_s if svc.session_affinity == "ClientIP" else 0,
        etp_local=etp_local,
        itp_local=svc.internal_traffic_policy == "Local",
        only_local_legacy=svc.type in ("NodePort", "LoadBalancer") and svc.external_traffic_policy == "Local",
        origin=svc.origin,
    )
