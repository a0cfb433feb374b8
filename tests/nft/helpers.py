"""Shared by the nft engine tests: the data, a model's comparable form, probes."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from kplab.netfilter.nft.model import NftRuleset
from kplab.netfilter.tracer import Probe
from kplab.packet import PROTO_NUMBERS

DATA = Path(__file__).resolve().parent.parent / "data" / "nft"
OVERALL = {form: DATA / f"overall_current.{form}" for form in ("list", "json")}
OVERALL["nft"] = DATA.parent / "kube-proxy-nftables" / "overall_current" / "expected.nft"
NODE_IPS = ("192.168.0.2", "192.168.1.2", "192.168.99.11", "2001:db8::1", "2001:db8:1::2")


def canonical(rs: NftRuleset) -> dict[str, Any]:
    """What must not depend on the form a ruleset was read from: chains (hook, priority, policy,
    rule statements and comments in order) and sets (types, elements as a set)."""
    out: dict[str, Any] = {}
    for table in rs.tables.values():
        out[table.id] = {
            "chains": {
                c.name: (c.type, c.hook, c.priority, c.policy, [(r.stmts, r.comment) for r in c.rules])
                for c in table.chains.values()
            },
            "sets": {
                s.name: (
                    s.key_types,
                    s.data_type,
                    s.timeout_s,
                    frozenset((e.key, e.data, e.comment) for e in s.elements),
                )
                for s in table.sets.values()
            },
        }
    return out


def probe(
    src: str,
    dst: str,
    dport: int,
    proto: str = "tcp",
    node_ips: tuple[str, ...] = NODE_IPS,
    ctstate: str = "NEW",
    in_iface: str | None = "eth0",
) -> Probe:
    source = ipaddress.ip_address(src)
    return Probe(
        int(source),
        int(ipaddress.ip_address(dst)),
        PROTO_NUMBERS[proto],
        40000,
        dport,
        tuple(int(ipaddress.ip_address(a)) for a in node_ips),
        ctstate,
        in_iface,
        family=source.version,
    )
