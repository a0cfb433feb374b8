"""IP and CIDR parsing the way kube-proxy does it (`netutils.ParseIPSloppy` / `ParseCIDRSloppy`).

"Sloppy" means IPv4 octets may carry leading zeros, read as decimal (`172.30.0.041` is
172.30.0.41), as Go's net.ParseIP did before Go 1.17. Results are canonical strings.
"""

from __future__ import annotations

import ipaddress


def parse_ip(text: str) -> str | None:
    """The canonical form of an IPv4/IPv6 address, or None if it is not one."""
    if "." in text and ":" not in text:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
            return None
        return ".".join(str(int(p)) for p in parts)
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def parse_cidr(text: str) -> str | None:
    """The canonical network `addr/len` of a CIDR (host bits cleared), or None."""
    addr, sep, length = text.strip().partition("/")
    ip = parse_ip(addr)
    if not sep or ip is None or not length.isdigit():
        return None
    try:
        return str(ipaddress.ip_network(f"{ip}/{int(length)}", strict=False))
    except ValueError:
        return None


def is_ipv4(text: str) -> bool:
    return ":" not in text


def in_cidr(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)


def host_port(ip: str, port: int) -> str:
    """`net.JoinHostPort`: IPv6 addresses are bracketed."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def to_cidr(ip: str) -> str:
    """`utilproxy.ToCIDR` of kube-proxy v1.15: an address with its full prefix length."""
    return f"{ip}/128" if ":" in ip else f"{ip}/32"
