"""TCP counters with the names `nstat` prints (Tcp* from /proc/net/snmp, TcpExt* from netstat)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

_SNMP_PREFIX: Final = "Tcp"
# The counters of /proc/net/snmp's Tcp line; the others are TcpExt (/proc/net/netstat).
_SNMP: Final = frozenset(
    {
        "ActiveOpens",
        "PassiveOpens",
        "AttemptFails",
        "EstabResets",
        "CurrEstab",
        "InSegs",
        "OutSegs",
        "RetransSegs",
        "InErrs",
        "OutRsts",
    }
)


@dataclass(slots=True)
class TcpCounters:
    """One per host (network namespace). Attribute names are the kernel's MIB names."""

    # /proc/net/snmp "Tcp:" (nstat prefixes with "Tcp")
    ActiveOpens: int = 0
    PassiveOpens: int = 0
    AttemptFails: int = 0
    EstabResets: int = 0
    CurrEstab: int = 0
    InSegs: int = 0
    OutSegs: int = 0
    RetransSegs: int = 0
    InErrs: int = 0
    OutRsts: int = 0
    # /proc/net/netstat "TcpExt:"
    TCPChallengeACK: int = 0
    TCPSYNChallenge: int = 0
    TCPACKSkippedChallenge: int = 0
    TCPACKSkippedSeq: int = 0
    TCPSACKRecovery: int = 0
    TCPRenoRecovery: int = 0
    TCPFastRetrans: int = 0
    TCPSlowStartRetrans: int = 0
    TCPTimeouts: int = 0
    TCPAbortOnTimeout: int = 0
    TCPAbortOnData: int = 0
    TCPAbortOnClose: int = 0
    TCPOFOQueue: int = 0
    TCPRcvQDrop: int = 0
    TCPToZeroWindowAdv: int = 0
    TCPFromZeroWindowAdv: int = 0
    DelayedACKs: int = 0
    ListenOverflows: int = 0
    ListenDrops: int = 0
    EmbryonicRsts: int = 0
    TW: int = 0

    def as_nstat(self, nonzero: bool = True) -> dict[str, int]:
        """Counters under nstat's names: `TcpEstabResets`, `TcpExtTCPChallengeACK`, ..."""
        result: dict[str, int] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if nonzero and not value:
                continue
            prefix = _SNMP_PREFIX if f.name in _SNMP else "TcpExt"
            result[prefix + f.name] = value
        return result
