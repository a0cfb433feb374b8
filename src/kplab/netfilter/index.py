"""The fast path: runs of consecutive rules indexed by the packet's destination, protocol and port.

kube-proxy's KUBE-SERVICES holds one rule per Service port, each `-d VIP/32 -p PROTO --dport
PORT`; KUBE-NODEPORTS holds `-p PROTO --dport PORT` rules. Walking them linearly costs one rule per
Service for every new connection. Here a maximal run of consecutive rules that all carry such a
key becomes a `Block`: a dict from the key to the rules of the run with that key, in chain order.
A packet only visits the rules under its own key; every other rule of the run has a key
predicate that cannot hold for it, so skipping them changes nothing, and the visited rules keep
their order: first-match semantics are exactly those of the linear walk (property-tested against
it in tests/netfilter/test_index.py). The rules' own predicates still run in full.

Key kinds: DST_PROTO_PORT = (dst, proto, dport) for `-d A/32 -p P --dport N`;
PROTO_PORT = (proto, dport) for `-p P --dport N`. Only exact, non-negated values make a key.
"""

from __future__ import annotations

from kplab.netfilter.engine import Block, CRule, Step
from kplab.netfilter.matches import rule_protocol
from kplab.netfilter.optspec import IMPLICIT_SHORT
from kplab.netfilter.values import cidrs, port_range
from kplab.packet import SCTP, TCP, UDP, Packet

DST_PROTO_PORT, PROTO_PORT = 0, 1
MIN_BLOCK = 4
_EMPTY: tuple[CRule, ...] = ()
_PORT_PROTOCOLS = {TCP: "tcp", UDP: "udp", SCTP: "sctp"}


def rule_keys(crule: CRule) -> tuple[tuple[int, int, int] | None, tuple[int, int] | None]:
    """The rule's (dst, proto, dport) and (proto, dport) keys, where it has them."""
    rule = crule.rule
    proto = rule_protocol(rule)
    if proto not in _PORT_PROTOCOLS:
        return None, None
    dport = _exact_dport(crule, _PORT_PROTOCOLS[proto])
    if dport is None:
        return None, None
    dst = _exact_dst(crule)
    return (None if dst is None else (dst, proto, dport)), (proto, dport)


def _exact_dport(crule: CRule, module: str) -> int | None:
    found: int | None = None
    for match in crule.rule.matches:
        if match.module != module:
            continue
        for opt in match.options:
            if opt.name in ("--dport", "--destination-port"):
                if opt.negated or found is not None:
                    return None
                lo, hi = port_range(opt.value)
                if lo != hi:
                    return None
                found = lo
    return found


def _exact_dst(crule: CRule) -> int | None:
    found: int | None = None
    for match in crule.rule.matches:
        if match.module:
            continue
        for opt in match.options:
            if IMPLICIT_SHORT.get(opt.name, opt.name) != "-d":
                continue
            nets = cidrs(opt.value)
            if opt.negated or found is not None or len(nets) != 1 or nets[0][1] != 0xFFFFFFFF:
                return None
            found = nets[0][0]
    return found


def build_steps(rules: list[CRule], min_block: int = MIN_BLOCK) -> list[Step]:
    """The chain's rules with every long enough keyed run folded into a Block."""
    keys = [rule_keys(r) for r in rules]
    steps: list[Step] = []
    i = 0
    while i < len(rules):
        runs = [_run_length(keys, i, kind) for kind in (DST_PROTO_PORT, PROTO_PORT)]
        kind = DST_PROTO_PORT if runs[0] >= runs[1] else PROTO_PORT
        length = runs[kind]
        if length < max(min_block, 1):
            steps.append(rules[i])
            i += 1
            continue
        table: dict[tuple[int, ...], list[CRule]] = {}
        for j in range(i, i + length):
            key = keys[j][kind]
            assert key is not None
            table.setdefault(key, []).append(rules[j])
        steps.append(Block(kind, {k: tuple(v) for k, v in table.items()}, length))
        i += length
    return steps


def _run_length(
    keys: list[tuple[tuple[int, int, int] | None, tuple[int, int] | None]], i: int, kind: int
) -> int:
    n = 0
    while i + n < len(keys) and keys[i + n][kind] is not None:
        n += 1
    return n


def candidates(block: Block, pkt: Packet) -> tuple[CRule, ...]:
    """The rules of `block` whose key is the packet's, in chain order."""
    if block.key_kind == DST_PROTO_PORT:
        return block.table.get((pkt.dst, pkt.proto, pkt.dport), _EMPTY)
    return block.table.get((pkt.proto, pkt.dport), _EMPTY)
