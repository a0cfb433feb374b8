"""UDP, ICMP and generic tracking (`nf_conntrack_proto_udp.c`, `_icmp.c`, `_generic.c`)."""

from __future__ import annotations

from kplab.netfilter.conntrack.entry import IPS_ASSURED, IPS_SEEN_REPLY, Entry, pack
from kplab.netfilter.conntrack.profiles import Profile, S, Sysctls
from kplab.packet import ICMP, Packet

ECHO_REPLY_OF = {8: 0, 13: 14, 15: 16, 17: 18}  # queries that open an ICMP "connection"
ICMP_REPLIES = frozenset(ECHO_REPLY_OF.values())
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})


def icmp_key(pkt: Packet) -> int:
    """ICMP tuple: the identifier rides in `sport`, the type in `dport`."""
    return pack(pkt.src, pkt.dst, ICMP, pkt.sport, pkt.icmp_type)


def icmp_reply_key(pkt: Packet) -> int:
    return pack(pkt.dst, pkt.src, ICMP, pkt.sport, ECHO_REPLY_OF.get(pkt.icmp_type, 0))


def udp_packet(entry: Entry, profile: Profile, sysctls: Sysctls, now_ns: int) -> None:
    """`nf_conntrack_udp_packet`: unreplied timeout until a reply; then stream timeout and ASSURED.

    From 5.15 the stream timeout (and ASSURED) wait until the flow is two seconds old.
    """
    unreplied = sysctls.nf_conntrack_udp_timeout * S
    if not entry.status & IPS_SEEN_REPLY or (profile.udp_stream_after_2s and now_ns <= entry.udp_stream_ns):
        entry.timeout_ns = now_ns + unreplied
    else:
        entry.timeout_ns = now_ns + sysctls.nf_conntrack_udp_timeout_stream * S
        entry.status |= IPS_ASSURED


def timeout_for(proto: int, sysctls: Sysctls) -> int:
    if proto == ICMP:
        return sysctls.nf_conntrack_icmp_timeout * S
    return sysctls.nf_conntrack_generic_timeout * S
