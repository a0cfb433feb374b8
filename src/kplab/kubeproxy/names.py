"""kube-proxy versions and its chain-name hash recipe.

`portProtoHash` (pkg/proxy/iptables/proxier.go): the first 16 characters of
base32(sha256(servicePortName + protocol)); KUBE-SEP- hashes servicePortName + protocol + "ip:port".
"""

from __future__ import annotations

import enum
import hashlib

from kplab.errors import InputError


class Version(enum.Enum):
    V1_14 = "1.14"
    V1_15 = "1.15"
    CURRENT = "current"

    @property
    def legacy(self) -> bool:
        """The v1.14/v1.15 layout (KUBE-XLB, --set-xmark, /32, %0.5f, Endpoints objects)."""
        return self is not Version.CURRENT

    @property
    def drops_invalid(self) -> bool:
        """Whether this version can write the `--ctstate INVALID -j DROP` rule (PR #74840, v1.15)."""
        return self is not Version.V1_14


def parse_version(text: str) -> Version:
    """`1.14`, `v1.15.3`, `current` -> Version; anything else is bad input."""
    cleaned = text.strip().lower().removeprefix("v")
    for version in Version:
        if cleaned == version.value or (version.legacy and cleaned.startswith(version.value + ".")):
            return version
    known = ", ".join(v.value for v in Version)
    raise InputError(f"--kube-proxy-version: unknown version {text!r} (known: {known})")


def service_port_name(namespace: str, name: str, port: str, version: Version) -> str:
    """`ServicePortName.String()`: current drops `:port` for an unnamed port; v1.15 kept the colon."""
    if port or version.legacy:
        return f"{namespace}/{name}:{port}"
    return f"{namespace}/{name}"


B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
B32_PAIRS = tuple(a + b for a in B32 for b in B32)  # 10 bits -> two base32 characters


def _hash16(text: str) -> str:
    """The first 16 characters of base32(sha256(text)): 16 x 5 bits = the digest's first 10 bytes."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    t = B32_PAIRS
    return (
        t[n >> 70]
        + t[n >> 60 & 1023]
        + t[n >> 50 & 1023]
        + t[n >> 40 & 1023]
        + t[n >> 30 & 1023]
        + t[n >> 20 & 1023]
        + t[n >> 10 & 1023]
        + t[n & 1023]
    )


def port_proto_hash(spn: str, protocol: str) -> str:
    """`portProtoHash(servicePortName, protocol)`: protocol in lower case."""
    return _hash16(spn + protocol)


def svc_chain(spn: str, protocol: str) -> str:
    return "KUBE-SVC-" + port_proto_hash(spn, protocol)


def svl_chain(spn: str, protocol: str) -> str:
    return "KUBE-SVL-" + port_proto_hash(spn, protocol)


def ext_chain(spn: str, protocol: str) -> str:
    return "KUBE-EXT-" + port_proto_hash(spn, protocol)


def fw_chain(spn: str, protocol: str) -> str:
    return "KUBE-FW-" + port_proto_hash(spn, protocol)


def xlb_chain(spn: str, protocol: str) -> str:
    return "KUBE-XLB-" + port_proto_hash(spn, protocol)


def sep_chain(spn: str, protocol: str, endpoint: str) -> str:
    """`servicePortEndpointChainName`: `endpoint` is "ip:port" (IPv6 as "[ip]:port")."""
    return "KUBE-SEP-" + _hash16(spn + protocol + endpoint)


SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-", "KUBE-XLB-")
