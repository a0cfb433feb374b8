"""Option values as iptables reads them: addresses, ports, port lists, marks, rates, NAT ranges.

Each parser raises ValueError with a short message; the compiler adds `file:line:`.
"""

from __future__ import annotations

from kplab.netfilter.ctview import Nat
from kplab.packet import PROTO_NUMBERS, ip, parse_cidr

PROTOCOLS = {**PROTO_NUMBERS, "all": 0, "ipv4": 4, "ipencap": 4, "gre": 47, "esp": 50, "ah": 51}

ICMP_TYPES: dict[str, tuple[int, int | None]] = {
    "any": (-1, None),
    "echo-reply": (0, None),
    "pong": (0, None),
    "destination-unreachable": (3, None),
    "network-unreachable": (3, 0),
    "host-unreachable": (3, 1),
    "protocol-unreachable": (3, 2),
    "port-unreachable": (3, 3),
    "fragmentation-needed": (3, 4),
    "source-quench": (4, None),
    "redirect": (5, None),
    "echo-request": (8, None),
    "ping": (8, None),
    "time-exceeded": (11, None),
    "ttl-exceeded": (11, 0),
    "parameter-problem": (12, None),
    "timestamp-request": (13, None),
    "timestamp-reply": (14, None),
}


def number(text: str, what: str, maximum: int = 0xFFFFFFFF) -> int:
    """A decimal or 0x-hex integer in [0, maximum]."""
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise ValueError(f"bad {what} '{text}'") from None
    if not text.isascii() or not 0 <= value <= maximum:
        raise ValueError(f"bad {what} '{text}'")
    return value


def protocol(text: str) -> int:
    name = text.lower()
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    return number(text, "protocol", 255)


def cidrs(text: str) -> tuple[tuple[int, int], ...]:
    """`10.0.0.0/8` or `1.2.3.4,5.6.7.8/30` -> ((network, mask), ...)."""
    try:
        return tuple(parse_cidr(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"bad address '{text}'") from None


def port(text: str) -> int:
    return number(text, "port", 65535)


def port_range(text: str) -> tuple[int, int]:
    """`80`, `80:90`, `:90`, `80:` (inclusive)."""
    low, sep, high = text.partition(":")
    if not sep:
        value = port(text)
        return value, value
    lo = port(low) if low else 0
    hi = port(high) if high else 65535
    if lo > hi:
        raise ValueError(f"bad port range '{text}'")
    return lo, hi


def port_list(text: str) -> tuple[tuple[int, int], ...]:
    """multiport `80,443,1000:2000` (at most 15 ports, a range counting as two)."""
    ranges = tuple(port_range(part) for part in text.split(","))
    if sum(1 if lo == hi else 2 for lo, hi in ranges) > 15:
        raise ValueError(f"too many ports in '{text}' (15 at most)")
    return ranges


def mark(text: str) -> tuple[int, int]:
    """`value[/mask]` -> (value, mask); the mask defaults to 0xffffffff."""
    value, sep, mask = text.partition("/")
    return number(value, "mark"), number(mask, "mark mask") if sep else 0xFFFFFFFF


def addr_range(text: str) -> tuple[int, int]:
    """iprange `10.0.0.1-10.0.0.9` (or one address)."""
    low, sep, high = text.partition("-")
    try:
        lo = ip(low)
        hi = ip(high) if sep else lo
    except ValueError:
        raise ValueError(f"bad address range '{text}'") from None
    if lo > hi:
        raise ValueError(f"bad address range '{text}'")
    return lo, hi


def rate_per_s(text: str) -> tuple[int, int]:
    """limit `5/sec`, `10/minute` ... -> (count, period in ns)."""
    count, sep, unit = text.partition("/")
    periods = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
    period = periods.get(unit[:1].lower(), 0) if sep else 10**9
    value = number(count, "rate")
    if not period or not value:
        raise ValueError(f"bad rate '{text}'")
    return value, period


def nat_range(text: str, kind: str) -> Nat:
    """`ip[-ip][:port[-port]]` of DNAT/SNAT (either part may be missing, but not both)."""
    addrs, sep, ports = text.partition(":")
    addr_min = addr_max = None
    if addrs:
        addr_min, addr_max = addr_range(addrs)
    port_min = port_max = None
    if sep:
        low, dash, high = ports.partition("-")
        port_min = port(low)
        port_max = port(high) if dash else port_min
        if port_min > port_max:
            raise ValueError(f"bad port range in '{text}'")
    if addr_min is None and port_min is None:
        raise ValueError(f"bad NAT range '{text}'")
    return Nat(kind, addr_min, addr_max, port_min, port_max)


def to_ports(text: str) -> tuple[int, int]:
    """MASQUERADE/REDIRECT `--to-ports 1000[-2000]`."""
    low, dash, high = text.partition("-")
    lo = port(low)
    hi = port(high) if dash else lo
    if lo > hi:
        raise ValueError(f"bad port range '{text}'")
    return lo, hi


def probability_fixed(text: str) -> int:
    """statistic `--probability P` as the kernel stores it: round(P * 2^31) (libxt_statistic)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"bad probability '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"bad probability '{text}' (0..1)")
    return int(value * 0x80000000 + 0.5)
