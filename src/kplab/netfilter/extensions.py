"""The extensions iptables itself has (libxt_*/libipt_* of iptables 1.8): a match or target outside
these lists makes `iptables-restore` refuse the whole input ("Couldn't load match/target"), while
one kplab merely does not model is legitimate in a real dump."""

from __future__ import annotations

from typing import Final

IPTABLES_MATCHES: Final = frozenset(
    {"addrtype", "ah", "bpf", "cgroup", "cluster", "comment", "connbytes", "connlabel", "connlimit",
     "connmark", "conntrack", "cpu", "dccp", "devgroup", "dscp", "ecn", "esp", "hashlimit", "helper",
     "icmp", "iprange", "ipvs", "length", "limit", "mac", "mark", "multiport", "nfacct", "osf", "owner",
     "physdev", "pkttype", "policy", "quota", "rateest", "realm", "recent", "rpfilter", "sctp", "set",
     "socket", "state", "statistic", "string", "tcp", "tcpmss", "time", "tos", "ttl", "u32", "udp"}
)  # fmt: skip
IPTABLES_TARGETS: Final = frozenset(
    {"ACCEPT", "DROP", "RETURN", "QUEUE", "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNMARK",
     "CONNSECMARK", "CT", "DNAT", "DSCP", "ECN", "HMARK", "IDLETIMER", "LED", "LOG", "MARK", "MASQUERADE",
     "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "RATEEST", "REDIRECT", "REJECT", "SECMARK", "SET", "SNAT",
     "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG"}
)  # fmt: skip
# nf_tables (what iptables-nft loads rules into) refuses a chain this many jumps below a built-in
# chain: NFT_JUMP_STACK_SIZE, "RULE_APPEND failed (Too many links)" (checked with iptables 1.8.9 on
# Linux 6.18: 15 nested user chains load, 16 do not). iptables-legacy has no such limit.
MAX_JUMP_DEPTH: Final = 16
