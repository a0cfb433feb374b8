"""Manifests (YAML or JSON, multi-document, `kind: List`) to the plain objects of `objects.py`.

Unknown kinds are skipped with a note; invalid objects fail with `file:doc N: path: what is wrong`.
Defaults are the API server's (type ClusterIP, protocol TCP, affinity timeout 10800 s, ...).
"""

from __future__ import annotations

from collections.abc import Callable

from kplab.errors import InputError
from kplab.kubeproxy import k8snames
from kplab.kubeproxy.docs import Doc, Fields, read_documents
from kplab.kubeproxy.ipaddr import parse_cidr, parse_ip
from kplab.kubeproxy.objects import (
    Cluster,
    EndpointAddress,
    Endpoints,
    EndpointSlice,
    EndpointSubset,
    KubeProxyConfig,
    Node,
    NodeEnv,
    Origin,
    Service,
    ServiceCIDR,
    ServicePort,
    SliceEndpoint,
    SlicePort,
)
from kplab.untrusted import read_text, shown

PROTOCOLS = ("TCP", "UDP", "SCTP")
NameCheck = Callable[[str], str | None]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def load_manifests(paths: list[str]) -> Cluster:
    cluster = Cluster()
    for path in paths:
        cluster.extend(load_manifest_text(read_text(path), path))
    return cluster


def load_manifest_text(text: str, file: str) -> Cluster:
    cluster = Cluster()
    for doc in read_documents(text, file):
        top = Fields(doc, doc.data)
        kind = top.string("kind")
        if kind == "Service":
            cluster.services.append(_service(doc, top))
        elif kind == "EndpointSlice":
            es = _endpoint_slice(doc, top, cluster.notes)
            if es is not None:
                cluster.slices.append(es)
        elif kind == "Endpoints":
            cluster.endpoints.append(_endpoints(doc, top))
        elif kind == "Node":
            cluster.nodes.append(_node(doc, top))
        elif kind == "KubeProxyConfiguration":
            cluster.configs.append(config_from(doc, top, cluster.notes))
        elif kind == "ServiceCIDR":
            cluster.service_cidrs.append(_service_cidr(doc, top))
        else:
            cluster.notes.append(
                f"{doc.where()}: skipped kind {shown(kind) if kind else '(none)'}: kube-proxy ignores it"
            )
    return cluster


def _origin(doc: Doc) -> Origin:
    return Origin(doc.file, doc.doc, doc.line)


def _ip(doc: Doc, path: str, value: str) -> str:
    ip = parse_ip(value)
    if ip is None:
        raise doc.error(path, f"{shown(value)} is not an IP address")
    return ip


def _cidr(doc: Doc, path: str, value: str) -> str:
    cidr = parse_cidr(value)
    if cidr is None:
        raise doc.error(path, f"{shown(value)} is not a CIDR")
    return cidr


def _meta(top: Fields, check: NameCheck = k8snames.dns1123_subdomain) -> tuple[str, str]:
    """(namespace, name), each checked as the API server checks them for this kind."""
    meta = top.sub("metadata")
    namespace = meta.string("namespace", "default") or "default"
    name = meta.string("name", required=True)
    for key, value, rule in (("namespace", namespace, k8snames.dns1123_label), ("name", name, check)):
        problem = rule(value)
        if problem is not None:
            raise top.doc.error(f"metadata.{key}", problem)
    return namespace, name


def _service(doc: Doc, top: Fields) -> Service:
    namespace, name = _meta(top, k8snames.dns1035_label)
    spec = top.sub("spec")
    stype = spec.choice("type", ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"), "ClusterIP")
    cluster_ips = spec.strings("clusterIPs") or (
        (spec.string("clusterIP"),) if spec.string("clusterIP") else ()
    )
    ips = tuple(
        ip if ip in ("None", "") else _ip(doc, f"spec.clusterIPs[{i}]", ip)
        for i, ip in enumerate(cluster_ips)
    )
    affinity = spec.choice("sessionAffinity", ("None", "ClientIP"), "None")
    timeout = (
        spec.sub("sessionAffinityConfig").sub("clientIP").integer("timeoutSeconds", 10800, lo=1, hi=86400)
    )
    return Service(
        namespace=namespace,
        name=name,
        type=stype,
        cluster_ips=ips,
        ports=tuple(_service_port(spec, path, value) for path, value in spec.items("ports")),
        external_ips=_addresses(spec, "externalIPs", _ip),
        lb_ingress_ips=_ingress_ips(doc, top),
        lb_source_ranges=_addresses(spec, "loadBalancerSourceRanges", _cidr),
        session_affinity=affinity,
        affinity_timeout_s=timeout,
        external_traffic_policy=spec.choice("externalTrafficPolicy", ("Cluster", "Local"), "Cluster"),
        internal_traffic_policy=spec.choice("internalTrafficPolicy", ("Cluster", "Local"), "Cluster"),
        health_check_node_port=spec.integer("healthCheckNodePort"),
        origin=_origin(doc),
    )


def _addresses(fields: Fields, key: str, parse: Callable[[Doc, str, str], str]) -> tuple[str, ...]:
    out = []
    for path, value in fields.items(key):
        if not isinstance(value, str):
            raise fields.doc.error(path, "expected a string")
        out.append(parse(fields.doc, path, value))
    return tuple(out)


def _service_port(spec: Fields, path: str, value: object) -> ServicePort:
    port = spec.mapping(path, value)
    if port.data.get("port") is None:
        raise port.doc.error(f"{path}.port", "is required")
    return ServicePort(
        name=port.string("name"),
        protocol=port.choice("protocol", PROTOCOLS, "TCP"),
        port=port.integer("port", lo=1),
        node_port=port.integer("nodePort"),
    )


def _ingress_ips(doc: Doc, top: Fields) -> tuple[str, ...]:
    ingress = top.sub("status").sub("loadBalancer")
    out = []
    for path, value in ingress.items("ingress"):
        item = ingress.mapping(path, value)
        ip = item.string("ip")
        if ip and item.string("ipMode", "VIP") != "Proxy":  # Proxy-mode ingress IPs are not programmed
            out.append(_ip(doc, f"{path}.ip", ip))
    return tuple(out)


def _endpoint_slice(doc: Doc, top: Fields, notes: list[str]) -> EndpointSlice | None:
    namespace, name = _meta(top)
    labels = top.sub("metadata").sub("labels")
    service_name = labels.string(SERVICE_NAME_LABEL)
    if not service_name:
        notes.append(
            f"{doc.where()}: EndpointSlice {namespace}/{name} has no {SERVICE_NAME_LABEL} label: ignored"
        )
        return None
    address_type = top.choice("addressType", ("IPv4", "IPv6", "FQDN"), "IPv4")
    endpoints = []
    for path, value in top.items("endpoints"):
        ep = top.mapping(path, value)
        cond = ep.sub("conditions")
        hints = ep.sub("hints")
        addresses = ep.strings("addresses")
        if address_type != "FQDN":
            addresses = tuple(_ip(doc, f"{path}.addresses", a) for a in addresses)
        endpoints.append(
            SliceEndpoint(
                addresses=addresses,
                ready=cond.boolean("ready", True),
                serving=cond.boolean("serving", True),
                terminating=cond.boolean("terminating", False),
                node_name=ep.string("nodeName") or None,
                zone_hints=_hint_names(hints, "forZones"),
                node_hints=_hint_names(hints, "forNodes"),
            )
        )
    ports = tuple(_slice_port(top, path, value) for path, value in top.items("ports"))
    return EndpointSlice(namespace, name, service_name, address_type, tuple(endpoints), ports, _origin(doc))


def _hint_names(hints: Fields, key: str) -> frozenset[str]:
    return frozenset(hints.mapping(path, value).string("name") for path, value in hints.items(key))


def _slice_port(top: Fields, path: str, value: object) -> SlicePort:
    port = top.mapping(path, value)
    number = port.integer("port", 0)
    return SlicePort(port.string("name"), port.choice("protocol", PROTOCOLS, "TCP"), number or None)


def _endpoints(doc: Doc, top: Fields) -> Endpoints:
    namespace, name = _meta(top)
    subsets = []
    for path, value in top.items("subsets"):
        subset = top.mapping(path, value)
        addresses = tuple(
            EndpointAddress(_ip(doc, f"{p}.ip", a.string("ip", required=True)), a.string("nodeName") or None)
            for p, v in subset.items("addresses")
            for a in (subset.mapping(p, v),)
        )
        ports = tuple(_slice_port(subset, p, v) for p, v in subset.items("ports"))
        subsets.append(EndpointSubset(addresses, ports))
    return Endpoints(namespace, name, tuple(subsets), _origin(doc))


def _node(doc: Doc, top: Fields) -> Node:
    meta = top.sub("metadata")
    labels = meta.sub("labels")
    status = top.sub("status")
    addresses = []
    for path, value in status.items("addresses"):
        item = status.mapping(path, value)
        addresses.append((item.string("type"), item.string("address")))
    spec = top.sub("spec")
    pod_cidrs = spec.strings("podCIDRs") or ((spec.string("podCIDR"),) if spec.string("podCIDR") else ())
    name = meta.string("name", required=True)
    problem = k8snames.dns1123_subdomain(name)
    if problem is not None:
        raise doc.error("metadata.name", problem)
    return Node(
        name=name,
        addresses=tuple(addresses),
        pod_cidrs=tuple(_cidr(doc, "spec.podCIDRs", c) for c in pod_cidrs),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.data.items())),
        origin=_origin(doc),
    )


def _service_cidr(doc: Doc, top: Fields) -> ServiceCIDR:
    _, name = _meta(top)
    spec = top.sub("spec")
    cidrs = tuple(_cidr(doc, f"spec.cidrs[{i}]", c) for i, c in enumerate(spec.strings("cidrs")))
    return ServiceCIDR(name, cidrs, _origin(doc))


def config_from(doc: Doc, top: Fields, notes: list[str]) -> KubeProxyConfig:
    mode = top.string("mode", "iptables") or "iptables"
    if mode not in ("iptables", "nftables"):
        notes.append(f"{doc.where()}: mode {shown(mode)}: kplab writes what the iptables mode would")
        mode = "iptables"
    ipt = top.sub("iptables")
    nft = top.sub("nftables")
    detect = top.sub("detectLocal")
    cidrs = [c.strip() for c in top.string("clusterCIDR").split(",") if c.strip()]
    every = tuple(_cidr(doc, "clusterCIDR", c) for c in cidrs)
    v4 = [c for c in every if ":" not in c]
    return KubeProxyConfig(
        hostname_override=top.string("hostnameOverride"),
        mode=mode,
        cluster_cidr=v4[0] if v4 else "",
        cluster_cidrs=every,
        detect_local_mode=top.choice(
            "detectLocalMode",
            ("ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix"),
            "ClusterCIDR",
        ),
        bridge_interface=detect.string("bridgeInterface"),
        interface_name_prefix=detect.string("interfaceNamePrefix"),
        masquerade_all=ipt.boolean("masqueradeAll"),
        masquerade_bit=ipt.integer("masqueradeBit", 14, hi=31),
        localhost_node_ports=ipt.boolean("localhostNodePorts", True),
        nft_masquerade_all=nft.boolean("masqueradeAll"),
        nft_masquerade_bit=nft.integer("masqueradeBit", 14, hi=31),
        node_port_addresses=top.strings("nodePortAddresses"),
        tcp_be_liberal=top.sub("conntrack").boolean("tcpBeLiberal"),
        origin=_origin(doc),
    )


def load_config(path: str) -> tuple[KubeProxyConfig, list[str]]:
    """The KubeProxyConfiguration in `path` (the file must hold exactly one)."""
    cluster = load_manifest_text(read_text(path), path)
    if len(cluster.configs) != 1:
        raise InputError(f"{path}:doc 1: expected one KubeProxyConfiguration, found {len(cluster.configs)}")
    return cluster.configs[0], cluster.notes


def load_env(path: str) -> NodeEnv:
    """The node environment file (the fixtures' env.yaml shape)."""
    docs = list(read_documents(read_text(path), path))
    if len(docs) != 1:
        raise InputError(f"{path}:doc 1: expected one node-environment document, found {len(docs)}")
    return env_from(docs[0])


def env_from(doc: Doc) -> NodeEnv:
    top = Fields(doc, doc.data)
    interfaces = []
    for path, value in top.items("interfaces"):
        item = top.mapping(path, value)
        addrs = item.strings("addresses")
        for a in addrs:
            _cidr(doc, f"{path}.addresses", a)
        interfaces.append((item.string("name", required=True), addrs))
    nfacct = top.sub("nfacct")
    sysctl = top.sub("sysctl")
    harness = top.sub("testHarness")
    mark = harness.string("masqueradeMark") or None
    family = harness.choice("ipFamily", ("IPv4", "IPv6"), "IPv4") if "ipFamily" in harness.data else None
    return NodeEnv(
        interfaces=tuple(interfaces),
        has_random_fully=top.sub("iptables").boolean("hasRandomFully"),
        nfacct=frozenset(name for name in nfacct.data if nfacct.boolean(str(name))),
        sysctls=tuple((str(k), sysctl.integer(str(k), hi=2**31)) for k in sysctl.data),
        large_cluster_threshold=top.sub("constants").integer(
            "largeClusterEndpointsThreshold", 1000, hi=10**9
        ),
        masquerade_mark=mark,
        ip_family=family,
    )
