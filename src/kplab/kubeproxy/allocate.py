"""Services as kube-proxy receives them: a ClusterIP for manifests that lack one, and the Services it
writes nothing for, each with a line saying why.

Hand-written manifests and the documentation's examples have no `spec.clusterIP`: the API server
would allocate one from the service CIDR. `allocate_cluster_ips` does the same, deterministically:
the address is chosen from a hash of `namespace/name` (never the network address, the CIDR's first
address, which the API server gives the `kubernetes` Service, or its last), moving to the next free
one on a collision. kube-proxy skips ExternalName Services and headless ones (`clusterIP: None`);
the IPv4 rules have nothing for a Service with only IPv6 cluster IPs.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from kplab.errors import InputError
from kplab.kubeproxy.objects import Cluster
from kplab.packet import fmt_ip, ip, parse_cidr

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"


def parse_service_cidr(text: str) -> tuple[int, int]:
    """(network, prefix length); at least a /28 so there is room to allocate."""
    try:
        network, mask = parse_cidr(text)
    except ValueError:
        raise InputError(f"--service-cidr: not an IPv4 CIDR like 10.96.0.0/12: {text[:40]!r}") from None
    plen = bin(mask).count("1")
    if "/" not in text or plen > 28:
        raise InputError(
            f"--service-cidr: {text[:40]!r} must be a prefix of /28 or wider (like 10.96.0.0/12)"
        )
    return network, plen


def allocate_cluster_ips(cluster: Cluster, service_cidr: str = DEFAULT_SERVICE_CIDR) -> list[str]:
    """Fill in missing cluster IPs (in place) and return one note per allocation or skip."""
    network, plen = parse_service_cidr(service_cidr)
    size = 1 << (32 - plen)
    used = {ip(a) for svc in cluster.services for a in svc.cluster_ips if _is_v4(a)}
    notes: list[str] = []
    for index, svc in enumerate(cluster.services):
        who = f"{svc.origin.file}: Service {svc.namespace}/{svc.name}" if svc.origin.file else (
            f"Service {svc.namespace}/{svc.name}")  # fmt: skip
        if svc.type == "ExternalName":
            notes.append(
                f"{who}: skipped: type ExternalName is a DNS alias, kube-proxy writes no rules for it"
            )
            continue
        if "None" in svc.cluster_ips:
            notes.append(f"{who}: skipped: headless (clusterIP: None), kube-proxy writes no rules for it")
            continue
        if svc.cluster_ips and not any(_is_v4(a) for a in svc.cluster_ips):
            notes.append(f"{who}: skipped: only IPv6 cluster IPs, the IPv4 rules have nothing for it")
            continue
        if any(_is_v4(a) for a in svc.cluster_ips):
            continue
        digest = hashlib.sha256(f"{svc.namespace}/{svc.name}".encode()).digest()
        offset = 2 + int.from_bytes(digest[:8], "big") % (size - 3)
        for _ in range(size - 3):
            addr = network + offset
            if addr not in used:
                break
            offset = 2 + (offset - 1) % (size - 3)
        else:
            raise InputError(f"--service-cidr {service_cidr}: no free address left for {who}")
        used.add(addr)
        cluster.services[index] = replace(svc, cluster_ips=(fmt_ip(addr),))
        notes.append(
            f"{who}: no spec.clusterIP: allocated {fmt_ip(addr)} from --service-cidr {service_cidr} "
            "(deterministic from namespace/name)"
        )
    return notes


def _is_v4(text: str) -> bool:
    try:
        ip(text)
    except ValueError:
        return False
    return True
