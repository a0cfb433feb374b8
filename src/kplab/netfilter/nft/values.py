"""nftables data types: what an expression yields, and how a literal of each type is read.

One table per fact: the type of each expression (`expr_type`), the named base-chain priorities, the
`ct state`/`ct status` bits (the kernel's), protocol and service names. `parse_value(type, text)`
turns a literal into a model value (an int, a string, or an `Interval` for a prefix or range) and
raises ValueError with a short reason; the parsers add the location.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

from kplab.netfilter.ctview import CtStatus
from kplab.netfilter.nft.model import (
    Binop,
    Concat,
    Const,
    Ct,
    Expr,
    Fib,
    Interval,
    Meta,
    Numgen,
    Part,
    Payload,
)

# Named priorities of the ip/ip6/inet families (nft's `chain_priority` table).
PRIORITY_NAMES: Final[dict[str, int]] = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}

# ct state bits as nft stores them (NF_CT_STATE_*_BIT): invalid, established, related, new, untracked.
CT_STATE_BITS: Final[dict[str, int]] = {
    "invalid": 1,
    "established": 2,
    "related": 4,
    "new": 8,
    "untracked": 64,
}
CT_STATUS_BITS: Final[dict[str, int]] = {
    "expected": int(CtStatus.EXPECTED),
    "seen-reply": int(CtStatus.SEEN_REPLY),
    "assured": int(CtStatus.ASSURED),
    "confirmed": int(CtStatus.CONFIRMED),
    "snat": int(CtStatus.SRC_NAT),
    "dnat": int(CtStatus.DST_NAT),
    "dying": 1 << 9,
}
FLAG_TYPES: Final = frozenset({"ct_state", "ct_status"})

PROTOCOLS: Final[dict[str, int]] = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "sctp": 132,
    "udplite": 136,
}
SERVICES: Final[dict[str, int]] = {
    "ssh": 22,
    "domain": 53,
    "http": 80,
    "https": 443,
    "bgp": 179,
}
NFPROTO: Final[dict[str, int]] = {"ipv4": 2, "ipv6": 10}
CT_DIRECTIONS: Final[dict[str, int]] = {"original": 0, "reply": 1}

_PAYLOAD_TYPES: Final[dict[tuple[str, str], str]] = {
    ("ip", "saddr"): "ipv4_addr",
    ("ip", "daddr"): "ipv4_addr",
    ("ip", "protocol"): "inet_proto",
    ("ip6", "saddr"): "ipv6_addr",
    ("ip6", "daddr"): "ipv6_addr",
    ("ip6", "nexthdr"): "inet_proto",
}
PORT_BASES: Final = frozenset({"th", "tcp", "udp", "sctp", "udplite"})
_META_TYPES: Final[dict[str, str]] = {
    "l4proto": "inet_proto",
    "protocol": "ether_type",
    "nfproto": "nf_proto",
    "mark": "mark",
    "iifname": "ifname",
    "oifname": "ifname",
    "iif": "iface_index",
    "oif": "iface_index",
    "nftrace": "integer",
}
_CT_TYPES: Final[dict[str, str]] = {
    "state": "ct_state",
    "status": "ct_status",
    "mark": "mark",
    "direction": "ct_dir",
}


def expr_type(expr: Expr) -> tuple[str, ...]:
    """The data type(s) of an expression: one per part of a concatenation."""
    if isinstance(expr, Concat):
        return tuple(t for part in expr.parts for t in expr_type(part))
    if isinstance(expr, Payload):
        if expr.base in PORT_BASES and expr.field in ("sport", "dport"):
            return ("inet_service",)
        return (_PAYLOAD_TYPES.get((expr.base, expr.field), "integer"),)
    if isinstance(expr, Meta):
        return (_META_TYPES.get(expr.key, "integer"),)
    if isinstance(expr, Ct):
        return (_CT_TYPES.get(expr.key, "integer"),)
    if isinstance(expr, Fib):
        return ("fib_addrtype",) if expr.result == "type" else ("ifname",)
    if isinstance(expr, Binop):
        return expr_type(expr.left)
    if isinstance(expr, Numgen | Const):
        return ("integer",)
    raise TypeError(expr)


def parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def _addr(text: str, family: int) -> int:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET if family == 4 else socket.AF_INET6, text))
    except OSError:
        kind = "IPv4" if family == 4 else "IPv6"
        raise ValueError(f"not an {kind} address: {text!r}") from None


def _address_value(text: str, family: int) -> Part:
    bits = 32 if family == 4 else 128
    if "/" in text:
        host, _, plen = text.partition("/")
        if not (plen.isascii() and plen.isdigit() and len(plen) <= 3) or int(plen) > bits:
            raise ValueError(f"bad prefix length in {text!r}")
        length = int(plen)
        base = _addr(host, family)
        span = (1 << (bits - length)) - 1
        return Interval(base & ~span, (base & ~span) | span)
    if "-" in text:
        lo, _, hi = text.partition("-")
        return Interval(_addr(lo, family), _addr(hi, family))
    return _addr(text, family)


def _named(text: str, names: dict[str, int], what: str) -> int:
    if text in names:
        return names[text]
    if text[:1].isdigit():
        return parse_int(text)
    raise ValueError(f"unknown {what} {text!r}")


def _flags(text: str, names: dict[str, int], what: str) -> int:
    mask = 0
    for name in text.split(","):
        if name not in names:
            raise ValueError(f"unknown {what} {name!r}")
        mask |= names[name]
    return mask


def _int_or_range(text: str, names: dict[str, int] | None = None) -> Part:
    def one(word: str) -> int:
        return _named(word, names, "value") if names is not None else parse_int(word)

    if "-" in text[1:]:
        lo, _, hi = text.partition("-")
        return Interval(one(lo), one(hi))
    return one(text)


def parse_value(type_: str, text: str) -> Part:
    """A literal of `type_` (ValueError says what is wrong)."""
    if type_ == "ipv4_addr":
        return _address_value(text, 4)
    if type_ == "ipv6_addr":
        return _address_value(text, 6)
    if type_ == "inet_service":
        return _int_or_range(text, SERVICES)
    if type_ == "inet_proto":
        return _named(text, PROTOCOLS, "protocol")
    if type_ == "ct_state":
        return _flags(text, CT_STATE_BITS, "ct state")
    if type_ == "ct_status":
        return _flags(text, CT_STATUS_BITS, "ct status")
    if type_ == "ct_dir":
        return _named(text, CT_DIRECTIONS, "ct direction")
    if type_ == "nf_proto":
        return _named(text, NFPROTO, "nfproto")
    if type_ in ("ifname", "fib_addrtype"):
        return text
    if type_ in ("integer", "mark", "iface_index", "inet_service"):
        return _int_or_range(text)
    try:  # a type kplab does not model (ether_addr, ...): kept as written, compared as text
        return _int_or_range(text)
    except ValueError:
        return text


def parse_priority(text: str) -> int:
    """`filter`, `dstnat - 10`, `-110`, `srcnat+5`."""
    compact = text.replace(" ", "")
    for name, value in PRIORITY_NAMES.items():
        if compact.startswith(name):
            rest = compact[len(name) :]
            return value + (parse_int(rest) if rest else 0)
    return parse_int(compact)


def format_addr(value: int, family: int) -> str:
    return str(ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value))


def parse_duration(text: str) -> int:
    """`10800s`, `3h`, `1d2h3m4s` -> seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for ch in text:
        if "0" <= ch <= "9" and len(number) < 19:  # nft keeps a u64 of milliseconds
            number += ch
        elif ch in units and number:
            total += int(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}")
    if number:
        total += int(number)
    return total


def literal(value: Part) -> Const:
    if isinstance(value, Interval):
        raise ValueError("a range is not a value here")
    return Const(value)
