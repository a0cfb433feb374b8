"""Endpoints per service port, as each kube-proxy era builds them, and `CategorizeEndpoints`.

- current (`EndpointSliceCache`): IPv4 slices labelled with the service name; first address of each
  endpoint; one entry per "ip:port" (a terminating duplicate never replaces a live one); sorted by
  the "ip:port" string. Keyed by (namespace, service, port name, protocol).
- v1.14/v1.15 (`endpointsToEndpointsMap`): core/v1 Endpoints, subsets x ports x ready addresses in
  object order, keyed by (namespace, service, port name). When a service has no Endpoints object,
  its EndpointSlices stand in (ready endpoints, in order): an honest conversion, noted in FACTS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kplab.kubeproxy.ipaddr import host_port, is_ipv4
from kplab.kubeproxy.objects import Cluster

Key = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    ip: str
    port: int
    local: bool
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone_hints: frozenset[str] = frozenset()
    node_hints: frozenset[str] = frozenset()
    addr: str = ""  # "ip:port" (`net.JoinHostPort`), filled in

    def __post_init__(self) -> None:
        object.__setattr__(self, "addr", host_port(self.ip, self.port))


def slice_endpoints(cluster: Cluster, node_name: str, family: int = 4) -> dict[Key, list[EndpointInfo]]:
    """`EndpointSliceCache.endpointInfoByServicePort` + `endpointsMapFromEndpointInfo` of the
    proxier of one IP family (4 or 6)."""
    sets: dict[Key, dict[str, EndpointInfo]] = {}
    for es in cluster.slices:
        if es.address_type != f"IPv{family}":
            continue
        for port in es.ports:
            if port.port is None:
                continue
            found = sets.setdefault((es.namespace, es.service_name, port.name, port.protocol), {})
            for ep in es.endpoints:
                if not ep.addresses or is_ipv4(ep.addresses[0]) != (family == 4):
                    continue
                info = EndpointInfo(
                    ep.addresses[0],
                    port.port,
                    bool(node_name) and ep.node_name == node_name,
                    ep.ready,
                    ep.serving,
                    ep.terminating,
                    ep.zone_hints,
                    ep.node_hints,
                )
                if info.addr not in found or not ep.terminating:
                    found[info.addr] = info
    return {key: sorted(found.values(), key=lambda e: e.addr) for key, found in sets.items() if found}


def legacy_endpoints(cluster: Cluster, node_name: str) -> dict[Key, list[EndpointInfo]]:
    """`EndpointChangeTracker.endpointsToEndpointsMap` of v1.15 (port name only, no protocol)."""
    out: dict[Key, list[EndpointInfo]] = {}
    with_objects = {(e.namespace, e.name) for e in cluster.endpoints}
    for eps in cluster.endpoints:
        for subset in eps.subsets:
            for port in subset.ports:
                if not port.port:
                    continue
                key = (eps.namespace, eps.name, port.name, "")
                for addr in subset.addresses:
                    if is_ipv4(addr.ip):
                        local = addr.node_name is not None and addr.node_name == node_name
                        out.setdefault(key, []).append(EndpointInfo(addr.ip, port.port, local))
    for es in cluster.slices:
        if (es.namespace, es.service_name) in with_objects or es.address_type != "IPv4":
            continue
        for port in es.ports:
            if port.port is None:
                continue
            key = (es.namespace, es.service_name, port.name, "")
            for ep in es.endpoints:
                if ep.ready and ep.addresses and is_ipv4(ep.addresses[0]):
                    local = ep.node_name is not None and ep.node_name == node_name
                    out.setdefault(key, []).append(EndpointInfo(ep.addresses[0], port.port, local))
    return out


@dataclass(slots=True)
class Categorized:
    cluster: list[EndpointInfo]
    local: list[EndpointInfo]
    reachable: list[EndpointInfo]
    has_any: bool


def categorize(
    endpoints: list[EndpointInfo],
    uses_cluster: bool,
    uses_local: bool,
    node_name: str,
    zone: str,
) -> Categorized:
    """`proxy.CategorizeEndpoints` (pkg/proxy/topology.go), zone/node hints included."""
    cluster: list[EndpointInfo] = []
    local: list[EndpointInfo] = []
    has_any = False
    mode = ""
    if uses_cluster:
        mode = _topology_mode(endpoints, node_name, zone)
        cluster = [e for e in endpoints if e.ready and _available(e, mode, node_name, zone)]
        if not cluster:
            cluster = [e for e in endpoints if e.serving and e.terminating]
        has_any = bool(cluster)
    if not uses_local:
        return Categorized(cluster, local, cluster, has_any)
    ready_local = terminating_local = False
    for e in endpoints:
        if e.ready:
            has_any = True
            ready_local = ready_local or e.local
        elif e.serving and e.terminating:
            has_any = True
            terminating_local = terminating_local or e.local
    if ready_local:
        local = [e for e in endpoints if e.local and e.ready]
    elif terminating_local:
        local = [e for e in endpoints if e.local and e.serving and e.terminating]
    if not uses_cluster:
        return Categorized(cluster, local, local, has_any)
    use_serving_terminating = terminating_local and not ready_local
    if mode == "" and not use_serving_terminating:
        return Categorized(cluster, local, cluster, has_any)
    return Categorized(cluster, local, _union(cluster, local), has_any)


def _union(first: Iterable[EndpointInfo], second: Iterable[EndpointInfo]) -> list[EndpointInfo]:
    merged = {e.addr: e for e in first}
    merged.update({e.addr: e for e in second})
    return list(merged.values())


def _topology_mode(endpoints: list[EndpointInfo], node_name: str, zone: str) -> str:
    """`topologyModeFromHints` (PreferSameTrafficDistribution enabled, as in ~v1.33)."""
    ready = [e for e in endpoints if e.ready]
    if not ready or not (ready[0].node_hints or ready[0].zone_hints):
        return ""
    if ready and all(e.node_hints for e in ready) and any(node_name in e.node_hints for e in ready):
        return "PreferSameNode"
    if ready and all(e.zone_hints for e in ready) and any(zone in e.zone_hints for e in ready):
        return "PreferSameZone"
    return ""


def _available(e: EndpointInfo, mode: str, node_name: str, zone: str) -> bool:
    if mode == "PreferSameNode":
        return node_name in e.node_hints
    if mode == "PreferSameZone":
        return zone in e.zone_hints
    return True
