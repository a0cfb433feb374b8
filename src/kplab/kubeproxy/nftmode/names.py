"""nftables-mode versions, object names and the chain-name hash recipe.

`hashAndTruncate` (pkg/proxy/nftables/proxier.go): the first 8 characters of
base32(sha256(name)), a dash and the readable name, cut to 237 characters plus `...` when longer
than 240 (knftables' NameLengthMax 256 less a 16-character prefix budget).
"""

from __future__ import annotations

import base64
import enum
import hashlib
from typing import Final

from kplab.errors import InputError
from kplab.kubeproxy.ipaddr import host_port

TABLE: Final = "kube-proxy"
NAME_BASE_MAX: Final = 240

# fixed chains, sets and maps
SERVICES: Final = "services"
SERVICE_IPS: Final = "service-ips"
SERVICE_NODEPORTS: Final = "service-nodeports"
NODEPORT_IPS: Final = "nodeport-ips"
CLUSTER_IPS: Final = "cluster-ips"
CLUSTER_IPS_CHECK: Final = "cluster-ips-check"
SERVICE_ENDPOINTS_CHECK: Final = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK: Final = "nodeport-endpoints-check"
NO_ENDPOINT_SERVICES: Final = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS: Final = "no-endpoint-nodeports"
REJECT_CHAIN: Final = "reject-chain"
FIREWALL_IPS: Final = "firewall-ips"
FIREWALL_CHECK: Final = "firewall-check"
MARK_MASQ: Final = "mark-for-masquerade"
MASQUERADING: Final = "masquerading"


class NftVersion(enum.Enum):
    """The nftables-mode layouts kplab writes."""

    V1_33 = "1.33"  # base chains at dstnat-10 (and filter-output-post-dnat at dstnat+10)
    CURRENT = "current"  # v1.34+: *-pre-dnat chains at -110, filter chains at 0 (PR #132456)

    @property
    def masquerade_port(self) -> bool:
        """Whether the off-cluster masquerade rule still matches the port (before PR #131492)."""
        return self is NftVersion.V1_33


def parse_nft_version(text: str) -> NftVersion:
    cleaned = text.strip().lower().removeprefix("v")
    for version in NftVersion:
        if cleaned == version.value or cleaned.startswith(version.value + "."):
            return version
    known = ", ".join(v.value for v in NftVersion)
    raise InputError(f"--kube-proxy-version: unknown version {text!r} for nftables mode (known: {known})")


def hash_and_truncate(name: str) -> str:
    encoded = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    out = encoded[:8] + "-" + name
    return out[: NAME_BASE_MAX - 3] + "..." if len(out) > NAME_BASE_MAX else out


def service_base(namespace: str, name: str, protocol: str, port_name: str) -> str:
    """`servicePortChainNameBase`: protocol in lower case, an unnamed port leaves a trailing `/`."""
    return hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}")


def endpoint_base(namespace: str, name: str, protocol: str, port_name: str, ip: str, port: int) -> str:
    """`servicePortEndpointChainNameBase`: IPv6 colons become dots."""
    return hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}__{ip.replace(':', '.')}/{port}")


def dnat_target(ip: str, port: int) -> str:
    """`epInfo.String()`: `ip:port`, IPv6 bracketed."""
    return host_port(ip, port)


def is_service_chain(name: str) -> bool:
    """`isServiceChainName`: per-service chains are the only names with a `/`."""
    return "/" in name
