"""Packets as plain data: the one type every layer of kplab passes around.

Addresses are IPv4 integers in the hot path (matching a CIDR is two integer operations);
`ip` converts at the edges. Bytes and checksums exist only where packets meet the outside
world (pcap files, the real-kernel lab): see `kplab.packet.codec`.
"""

from kplab.packet.addr import cidr, fmt_ip, fmt_ipport, in_cidr, ip, parse_cidr, parse_ipport
from kplab.packet.model import (
    ICMP,
    ICMP_QUOTE_MAX,
    PROTO_NAMES,
    PROTO_NUMBERS,
    SCTP,
    TCP,
    UDP,
    Packet,
    TcpFlags,
    flags_from_str,
    flags_to_str,
    ip_length,
    tcp_options_length,
)

__all__ = [
    "ICMP",
    "ICMP_QUOTE_MAX",
    "PROTO_NAMES",
    "PROTO_NUMBERS",
    "SCTP",
    "TCP",
    "UDP",
    "Packet",
    "TcpFlags",
    "cidr",
    "flags_from_str",
    "flags_to_str",
    "fmt_ip",
    "fmt_ipport",
    "in_cidr",
    "ip",
    "ip_length",
    "parse_cidr",
    "parse_ipport",
    "tcp_options_length",
]
