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
PROTO_PORT = (proto, dport) for `-p P --dport N`. Only exact, non-negated values make a key. A rule
reached through a block skips its key tests (`-d`, `-p`, `--dport`): the key already proves them.

A second shape is folded too: a run of rules that only draw `statistic --mode random` and jump
(KUBE-SVC-*'s choice of an endpoint) becomes a `Fan` whose draws are made in order from a tuple of
stored probabilities, the same draws from the same RNG as the linear walk makes.
"""

from __future__ import annotations

from dataclasses import replace

from kplab.netfilter.engine import K_GOTO, K_JUMP, Block, CRule, Fan, Step
from kplab.netfilter.matches import rule_protocol
from kplab.netfilter.optspec import IMPLICIT_SHORT
from kplab.netfilter.values import cidrs, port_range, probability_fixed
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


def build_steps(
    rules: list[CRule], min_block: int = MIN_BLOCK, shared: dict[object, object] | None = None
) -> list[Step]:
    """The chain's rules with every long enough keyed run folded into a Block, every statistic run
    into a Fan. `shared` (the compile's intern table) lets identical Fan draws share one tuple."""
    keys = [rule_keys(r) for r in rules]
    draws = [_fan_draw(r) for r in rules]
    steps: list[Step] = []
    i = 0
    while i < len(rules):
        fan = 0
        while i + fan < len(rules) and draws[i + fan] is not None:
            fan += 1
        if fan >= 2:
            run = tuple(rules[i : i + fan])
            fixed = tuple(d for d in draws[i : i + fan] if d is not None)
            if shared is not None:
                interned = shared.setdefault(("fan", fixed), fixed)
                if isinstance(interned, tuple):  # always: only this puts ("fan", ...) keys in
                    fixed = interned
            steps.append(Fan(fixed, tuple(replace(r, preds=()) for r in run), run))
            i += fan
            continue
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
            table.setdefault(key, []).append(_without_key_tests(rules[j], _KEY_PARTS[kind]))
        steps.append(Block(kind, {k: v[0] if len(v) == 1 else tuple(v) for k, v in table.items()}, length))
        i += length
    return steps


_KEY_PARTS = {DST_PROTO_PORT: frozenset({"dst", "proto", "dport"}), PROTO_PORT: frozenset({"proto", "dport"})}


def _without_key_tests(crule: CRule, parts: frozenset[str]) -> CRule:
    """The rule as the block runs it: its key tests (`-d`, `-p`, `--dport`, marked by
    `matches.basic.key_part`) dropped, since the block only hands it packets with its key. Kept
    whole if a test appears twice (then the key alone does not prove both)."""
    tags = [getattr(pred, "key_part", None) for pred in crule.preds]
    found = [tag for tag in tags if tag in parts]
    if len(found) != len(set(found)) or set(found) != parts:
        return crule
    kept = tuple(pred for pred, tag in zip(crule.preds, tags, strict=True) if tag not in parts)
    return replace(crule, preds=kept)


def _fan_draw(crule: CRule) -> int | None:
    """round(P * 2^31) when the rule only draws `statistic --mode random --probability P` (comments
    aside) and jumps to a chain; None otherwise."""
    if crule.kind not in (K_JUMP, K_GOTO) or len(crule.preds) != 1:
        return None
    fixed: int | None = None
    for match in crule.rule.matches:
        if match.module == "comment":
            continue
        names = {opt.name: opt for opt in match.options}
        if match.module != "statistic" or set(names) != {"--mode", "--probability"} or fixed is not None:
            return None
        if names["--mode"].value != "random" or any(opt.negated for opt in match.options):
            return None
        fixed = probability_fixed(names["--probability"].value)
    return fixed


def _run_length(
    keys: list[tuple[tuple[int, int, int] | None, tuple[int, int] | None]], i: int, kind: int
) -> int:
    n = 0
    while i + n < len(keys) and keys[i + n][kind] is not None:
        n += 1
    return n


def candidates(block: Block, pkt: Packet) -> tuple[CRule, ...]:
    """The rules of `block` whose key is the packet's, in chain order."""
    key = (pkt.dst, pkt.proto, pkt.dport) if block.key_kind == DST_PROTO_PORT else (pkt.proto, pkt.dport)
    found = block.table.get(key)
    if found is None:
        return _EMPTY
    return found if isinstance(found, tuple) else (found,)
