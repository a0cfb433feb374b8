"""`nft -j list ruleset`: is kube-proxy in nftables mode, does it DNAT Services, and does anything on
the forward path drop `ct state invalid`?

kube-proxy's nftables mode (alpha 1.29, GA 1.33) keeps its rules in `table ip kube-proxy` (and
`ip6 kube-proxy`) and, unlike iptables mode, installs no `ct state invalid drop` (PR #122663): it
relies on `nf_conntrack_tcp_be_liberal` (conntrack.tcpBeLiberal). Base chains hooked at forward, or
at prerouting after conntrack (priority > -200), are walked through `jump`/`goto` statements.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kplab.errors import InputError

KUBE_PROXY_TABLE = "kube-proxy"
CONNTRACK_PRIORITY = -200
_HARMLESS = frozenset({"counter", "comment", "log", "drop", "reject", "accept"})


@dataclass(slots=True)
class NftFacts:
    file: str
    kube_proxy_tables: list[str] = field(default_factory=list)  # "ip kube-proxy"
    service_dnat: list[str] = field(default_factory=list)  # "ip kube-proxy chain C handle H: dnat to A"
    invalid_drops: list[tuple[str, list[str]]] = field(default_factory=list)  # (where, conditions)
    xt_tables: list[str] = field(default_factory=list)  # tables written by iptables-nft (xt matches)

    @property
    def full_drop(self) -> str | None:
        return next((where for where, conds in self.invalid_drops if not conds), None)


@dataclass(slots=True)
class _Chain:
    family: str
    table: str
    name: str
    hook: str | None
    prio: int | None
    rules: list[dict[str, Any]] = field(default_factory=list)


def analyse(text: str, file: str) -> NftFacts:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{file}:{exc.lineno}: not JSON (expected `nft -j list ruleset`): {exc.msg}"
        ) from None
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError(f'{file}:1: expected {{"nftables": [...]}} as `nft -j list ruleset` prints it')
    chains = _chains(items, file)
    facts = NftFacts(file)
    for (family, table, _), chain in chains.items():
        tname = f"{family} {table}"
        if table == KUBE_PROXY_TABLE and tname not in facts.kube_proxy_tables:
            facts.kube_proxy_tables.append(tname)
        for rule in chain.rules:
            exprs = rule["expr"]
            if any("xt" in e for e in exprs) and tname not in facts.xt_tables:
                facts.xt_tables.append(tname)
            if table == KUBE_PROXY_TABLE and any("dnat" in e for e in exprs):
                facts.service_dnat.append(f"{_where(chain, rule)}: {_compact(exprs)}")
    for chain in chains.values():
        if chain.hook == "forward" or (chain.hook == "prerouting" and (chain.prio or 0) > CONNTRACK_PRIORITY):
            _walk(chains, chain, (chain.name,), facts.invalid_drops)
    return facts


def _chains(items: list[Any], file: str) -> dict[tuple[str, str, str], _Chain]:
    chains: dict[tuple[str, str, str], _Chain] = {}
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InputError(f"{file}:1: nftables[{n - 1}]: expected an object")
        if isinstance(chain := item.get("chain"), dict):
            key = _key(chain, "name", file, n)
            prio = chain.get("prio")
            chains[key] = _Chain(
                *key, _str_or_none(chain.get("hook")), prio if isinstance(prio, int) else None
            )
        elif isinstance(rule := item.get("rule"), dict):
            key = _key(rule, "chain", file, n)
            if not isinstance(rule.get("expr"), list) or not all(isinstance(e, dict) for e in rule["expr"]):
                raise InputError(f"{file}:1: nftables[{n - 1}]: rule without an expr list")
            if key not in chains:
                raise InputError(f"{file}:1: nftables[{n - 1}]: rule in undeclared chain {key[2]!r}")
            chains[key].rules.append(rule)
    return chains


def _key(obj: dict[str, Any], name_field: str, file: str, n: int) -> tuple[str, str, str]:
    values = (obj.get("family"), obj.get("table"), obj.get(name_field))
    if not all(isinstance(v, str) for v in values):
        raise InputError(f"{file}:1: nftables[{n - 1}]: family, table and {name_field} must be strings")
    return values  # type: ignore[return-value]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _where(chain: _Chain, rule: dict[str, Any]) -> str:
    return f"{chain.family} {chain.table} chain {chain.name} handle {rule.get('handle', '?')}"


def _compact(exprs: list[dict[str, Any]]) -> str:
    return json.dumps(exprs, separators=(",", ":"), sort_keys=True)[:200]


def _is_ct_invalid(expr: dict[str, Any]) -> bool:
    match = expr.get("match")
    if not isinstance(match, dict) or match.get("left") != {"ct": {"key": "state"}}:
        return False
    if match.get("op") not in ("==", "in"):
        return False
    right = match.get("right")
    if isinstance(right, dict):
        right = right.get("set")
    names = right if isinstance(right, list) else [right]
    return "invalid" in names


def _admits_invalid(exprs: list[dict[str, Any]]) -> bool:
    """False if a `ct state` test keeps INVALID packets out of this rule (`ct state new jump ...`)."""
    for e in exprs:
        match = e.get("match")
        if isinstance(match, dict) and match.get("left") == {"ct": {"key": "state"}}:
            negated = match.get("op") == "!="
            if _is_ct_invalid({"match": {**match, "op": "=="}}) == negated:
                return False
    return True


def _walk(
    chains: dict[tuple[str, str, str], _Chain],
    chain: _Chain,
    path: tuple[str, ...],
    found: list[tuple[str, list[str]]],
) -> None:
    for rule in chain.rules:
        exprs = rule["expr"]
        verdicts = {k for e in exprs for k in e if k in ("drop", "reject")}
        if verdicts and any(_is_ct_invalid(e) for e in exprs):
            conds = [_compact([e]) for e in exprs if not _is_ct_invalid(e) and not set(e) <= _HARMLESS]
            found.append((f"{_where(chain, rule)} (via {' -> '.join(path)})", conds))
            continue
        for e in exprs:
            jump = e.get("jump") or e.get("goto")
            target = jump.get("target") if isinstance(jump, dict) else None
            nxt = chains.get((chain.family, chain.table, target)) if isinstance(target, str) else None
            if nxt is not None and nxt.name not in path and _admits_invalid(exprs):
                _walk(chains, nxt, (*path, nxt.name), found)
