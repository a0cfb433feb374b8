"""What one IP family's nftables proxier works with: the family's words, the node's addresses,
the masquerade mark, the local-traffic detector, the NodePort addresses and the ServiceCIDRs."""

from __future__ import annotations

from dataclasses import dataclass

from kplab.kubeproxy.ipaddr import in_cidr, is_ipv4, parse_cidr
from kplab.kubeproxy.names import Version
from kplab.kubeproxy.nftmode.names import NftVersion
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, Node, NodeEnv
from kplab.kubeproxy.resolve import NodeContext, node_context


@dataclass(frozen=True, slots=True)
class Family:
    number: int  # 4 or 6
    nft: str  # the table family and payload protocol: ip or ip6
    addr_type: str  # ipv4_addr or ipv6_addr
    no_localhost: str  # `ip daddr != 127.0.0.0/8` or `ip6 daddr != ::1`
    loopback: str
    zero: str

    @property
    def api(self) -> str:
        return f"IPv{self.number}"


IPV4 = Family(4, "ip", "ipv4_addr", "ip daddr != 127.0.0.0/8", "127.0.0.0/8", "0.0.0.0/0")
IPV6 = Family(6, "ip6", "ipv6_addr", "ip6 daddr != ::1", "::1/128", "::/0")


@dataclass(frozen=True, slots=True)
class NftContext:
    version: NftVersion
    family: Family
    base: NodeContext  # node name, zone, config and environment (shared with iptables mode)
    node_ip: str  # the family's primary node IP (LoadBalancerSourceRanges "allow from node")
    mark: str  # "0x00004000" (or the test harness's "0x4000")
    masquerade_all: bool
    if_local: str | None  # `ip saddr 10.0.0.0/8`, `iifname cbr0`, ... (IfLocalNFT)
    if_not_local: str | None
    node_port_match_all: bool
    node_port_ips: tuple[str, ...]  # the nodeport-ips set (loopback skipped)
    service_cidrs: tuple[str, ...]  # this family's ServiceCIDRs


def families(cluster: Cluster, config: KubeProxyConfig, env: NodeEnv, node: Node | None) -> list[Family]:
    """The proxiers kube-proxy runs: the test harness's one family, else IPv4 and, when the inputs
    hold any IPv6 address (node, interfaces, Services, ServiceCIDRs, clusterCIDR), IPv6 too."""
    if env.ip_family is not None:
        return [IPV4 if env.ip_family == "IPv4" else IPV6]
    addresses = [a for _, a in node.addresses] if node else []
    addresses += [a.partition("/")[0] for _, addrs in env.interfaces for a in addrs if a != "::1/128"]
    addresses += [ip for s in cluster.services for ip in s.cluster_ips if ip not in ("None", "")]
    addresses += [c for sc in cluster.service_cidrs for c in sc.cidrs] + list(config.cluster_cidrs)
    return [IPV4, IPV6] if any(":" in a for a in addresses) else [IPV4]


def _of(family: Family, text: str) -> bool:
    return is_ipv4(text) == (family.number == 4)


def primary_ip(family: Family, node: Node | None) -> str:
    """The family's first InternalIP, else ExternalIP; kube-proxy falls back to loopback."""
    for wanted in ("InternalIP", "ExternalIP"):
        for kind, addr in node.addresses if node else ():
            if kind == wanted and _of(family, addr):
                return addr
    return "127.0.0.1" if family.number == 4 else "::1"


def interface_ips(family: Family, env: NodeEnv, node: Node | None) -> list[str]:
    """The node's interface addresses of the family (the env file's, else the Node's)."""
    if env.interfaces:
        found = [a.partition("/")[0] for _, addrs in env.interfaces for a in addrs]
    else:
        found = [a for t, a in node.addresses if t in ("InternalIP", "ExternalIP")] if node else []
    return [ip for ip in found if _of(family, ip)]


def detector(family: Family, config: KubeProxyConfig, node: Node | None) -> tuple[str | None, str | None]:
    """`IfLocalNFT` / `IfNotLocalNFT` of pkg/proxy/util/localdetector.go."""
    mode = config.detect_local_mode
    cidrs: list[str] = []
    if mode == "ClusterCIDR":
        cidrs = [c for c in config.cluster_cidrs if _of(family, c)]
    elif mode == "NodeCIDR" and node is not None:
        cidrs = [c for c in node.pod_cidrs if _of(family, c)]
    if cidrs:
        return f"{family.nft} saddr {cidrs[0]}", f"{family.nft} saddr != {cidrs[0]}"
    if mode == "BridgeInterface" and config.bridge_interface:
        name = config.bridge_interface
        return f"iifname {name}", f"iifname != {name}"
    if mode == "InterfaceNamePrefix" and config.interface_name_prefix:
        name = config.interface_name_prefix + "*"
        return f"iifname {name}", f"iifname != {name}"
    return None, None


def nft_context(
    version: NftVersion,
    family: Family,
    cluster: Cluster,
    config: KubeProxyConfig,
    env: NodeEnv,
    node: Node | None,
    node_name: str,
) -> tuple[NftContext, list[str]]:
    """The family's context and notes (loopback NodePort addresses skipped, as kube-proxy logs)."""
    notes: list[str] = []
    node_ip = primary_ip(family, node)
    # nftables mode defaults --nodeport-addresses to "primary" (the family's primary node IP)
    wanted = config.node_port_addresses or ("primary",)
    cidrs = []
    for text in wanted:
        cidr = f"{node_ip}/{32 if family.number == 4 else 128}" if text == "primary" else parse_cidr(text)
        if cidr is not None and _of(family, cidr):
            cidrs.append(cidr)
    match_all = not cidrs or family.zero in cidrs
    ips: list[str] = []
    for cidr in [] if match_all else cidrs:
        for ip in interface_ips(family, env, node):
            if in_cidr(ip, cidr) and ip not in ips:
                if in_cidr(ip, family.loopback):
                    notes.append(f"--nodeport-addresses includes localhost {ip}: not supported, skipped")
                    continue
                ips.append(ip)
    if_local, if_not_local = detector(family, config, node)
    bit = f"0x{1 << config.nft_masquerade_bit:08x}"
    ctx = NftContext(
        version=version,
        family=family,
        base=node_context(Version.CURRENT, config, env, node, node_name),
        node_ip=node_ip,
        mark=env.masquerade_mark or bit,
        masquerade_all=config.nft_masquerade_all,
        if_local=if_local,
        if_not_local=if_not_local,
        node_port_match_all=match_all,
        node_port_ips=tuple(ips),
        service_cidrs=tuple(c for sc in cluster.service_cidrs for c in sc.cidrs if _of(family, c)),
    )
    return ctx, notes
