"""IPv4 addresses as integers, and their text forms."""

from __future__ import annotations


def ip(text: str) -> int:
    """Dotted quad to integer. Raises ValueError on anything else.

    Leading zeros are accepted and read as decimal (kube-proxy normalises `10.180.00.001`
    to `10.180.0.1` the same way).
    """
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {text!r}")
    value = 0
    for part in parts:
        if not part.isdigit() or len(part) > 3:
            raise ValueError(f"not an IPv4 address: {text!r}")
        octet = int(part)
        if octet > 255:
            raise ValueError(f"not an IPv4 address: {text!r}")
        value = (value << 8) | octet
    return value


def fmt_ip(value: int) -> str:
    return f"{(value >> 24) & 255}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def fmt_ipport(addr: int, port: int) -> str:
    return f"{fmt_ip(addr)}:{port}"


def parse_ipport(text: str) -> tuple[int, int | None]:
    """`10.0.0.1:80` -> (addr, 80); `10.0.0.1` -> (addr, None)."""
    host, sep, port = text.partition(":")
    if not sep:
        return ip(host), None
    if not (port.isascii() and port.isdigit() and len(port) <= 5) or int(port) > 65535:
        raise ValueError(f"bad port in {text!r}")
    return ip(host), int(port)


def cidr(prefix_len: int) -> int:
    """Netmask for a prefix length, as an integer."""
    if not 0 <= prefix_len <= 32:
        raise ValueError(f"bad prefix length {prefix_len}")
    return (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF


def parse_cidr(text: str) -> tuple[int, int]:
    """`10.0.0.0/8` -> (network, mask); a bare address is a /32. A dotted mask is accepted too.

    The network is masked, as the kernel stores it (`10.1.2.3/8` matches like `10.0.0.0/8`).
    """
    host, sep, plen = text.partition("/")
    if not sep:
        mask = 0xFFFFFFFF
    elif plen.isascii() and plen.isdigit() and len(plen) <= 3:
        mask = cidr(int(plen))
    else:
        mask = ip(plen)
    return ip(host) & mask, mask


def in_cidr(addr: int, network: int, mask: int) -> bool:
    return addr & mask == network


def mask_len(mask: int) -> int | None:
    """Prefix length of a contiguous mask, or None if the mask has holes."""
    length = bin(mask).count("1")
    return length if cidr(length) == mask else None
