"""How many words each known option takes, per match module and per target.

The parser uses these tables the way iptables' getopt does: an option takes exactly its number of
words (a word after it that no option claims is a "Bad argument", as in iptables-restore). Modules
and targets not listed here are kept as written: their options take the words up to the next word
that starts with `-` or is `!`.
"""

from __future__ import annotations

# The implicit matches (module "") and the words each takes.
IMPLICIT: dict[str, int] = {
    "-s": 1,
    "--source": 1,
    "--src": 1,
    "-d": 1,
    "--destination": 1,
    "--dst": 1,
    "-p": 1,
    "--protocol": 1,
    "-i": 1,
    "--in-interface": 1,
    "-o": 1,
    "--out-interface": 1,
    "-f": 0,
    "--fragment": 0,
}

# Canonical (short) name of each implicit option.
IMPLICIT_SHORT: dict[str, str] = {
    "--source": "-s",
    "--src": "-s",
    "--destination": "-d",
    "--dst": "-d",
    "--protocol": "-p",
    "--in-interface": "-i",
    "--out-interface": "-o",
    "--fragment": "-f",
}

_PORTS = {"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1}

MATCH_OPTIONS: dict[str, dict[str, int]] = {
    "tcp": {**_PORTS, "--tcp-flags": 2, "--syn": 0, "--tcp-option": 1},
    "udp": dict(_PORTS),
    "sctp": {**_PORTS, "--chunk-types": 2},
    "icmp": {"--icmp-type": 1},
    "multiport": {
        "--sports": 1,
        "--source-ports": 1,
        "--dports": 1,
        "--destination-ports": 1,
        "--ports": 1,
    },
    "comment": {"--comment": 1},
    "conntrack": {
        name: 1
        for name in (
            "--ctstate",
            "--ctproto",
            "--ctorigsrc",
            "--ctorigdst",
            "--ctreplsrc",
            "--ctrepldst",
            "--ctorigsrcport",
            "--ctorigdstport",
            "--ctreplsrcport",
            "--ctrepldstport",
            "--ctstatus",
            "--ctexpire",
            "--ctdir",
        )
    },
    "state": {"--state": 1},
    "mark": {"--mark": 1},
    "connmark": {"--mark": 1},
    "addrtype": {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0},
    "statistic": {"--mode": 1, "--probability": 1, "--every": 1, "--packet": 1},
    "recent": {
        "--set": 0,
        "--rcheck": 0,
        "--update": 0,
        "--remove": 0,
        "--seconds": 1,
        "--hitcount": 1,
        "--name": 1,
        "--mask": 1,
        "--reap": 0,
        "--rttl": 0,
        "--rsource": 0,
        "--rdest": 0,
    },
    "nfacct": {"--nfacct-name": 1},
    "iprange": {"--src-range": 1, "--dst-range": 1},
    "physdev": {
        "--physdev-in": 1,
        "--physdev-out": 1,
        "--physdev-is-in": 0,
        "--physdev-is-out": 0,
        "--physdev-is-bridged": 0,
    },
    "set": {
        "--match-set": 2,
        "--set": 2,
        "--return-nomatch": 0,
        "--update-counters": 0,
        "--update-subcounters": 0,
        "--packets-eq": 1,
        "--packets-lt": 1,
        "--packets-gt": 1,
        "--bytes-eq": 1,
        "--bytes-lt": 1,
        "--bytes-gt": 1,
    },
    "limit": {"--limit": 1, "--limit-burst": 1},
}

# Protocols whose match module iptables loads by itself after `-p PROTO` (`-p tcp --dport 80`).
PROTOCOL_MODULES = frozenset({"tcp", "udp", "sctp", "icmp"})

TARGET_OPTIONS: dict[str, dict[str, int]] = {
    "ACCEPT": {},
    "DROP": {},
    "RETURN": {},
    "QUEUE": {},
    "NOTRACK": {},
    "TRACE": {},
    "REJECT": {"--reject-with": 1},
    "DNAT": {"--to-destination": 1, "--to": 1, "--random": 0, "--persistent": 0},
    "SNAT": {"--to-source": 1, "--to": 1, "--random": 0, "--random-fully": 0, "--persistent": 0},
    "MASQUERADE": {"--to-ports": 1, "--random": 0, "--random-fully": 0},
    "REDIRECT": {"--to-ports": 1, "--random": 0},
    "MARK": {"--set-xmark": 1, "--set-mark": 1, "--or-mark": 1, "--xor-mark": 1, "--and-mark": 1},
    "CONNMARK": {
        "--set-xmark": 1,
        "--set-mark": 1,
        "--save-mark": 0,
        "--restore-mark": 0,
        "--nfmask": 1,
        "--ctmask": 1,
        "--mask": 1,
        "--or-mark": 1,
        "--xor-mark": 1,
        "--and-mark": 1,
    },
    "CT": {
        "--notrack": 0,
        "--zone": 1,
        "--zone-orig": 1,
        "--zone-reply": 1,
        "--helper": 1,
        "--ctevents": 1,
        "--expevents": 1,
        "--timeout": 1,
    },
    "LOG": {
        "--log-level": 1,
        "--log-prefix": 1,
        "--log-tcp-sequence": 0,
        "--log-tcp-options": 0,
        "--log-ip-options": 0,
        "--log-uid": 0,
        "--log-macdecode": 0,
    },
    "NFLOG": {
        "--nflog-group": 1,
        "--nflog-prefix": 1,
        "--nflog-range": 1,
        "--nflog-size": 1,
        "--nflog-threshold": 1,
    },
}
