"""An nftables ruleset (`nft list ruleset` text or `nft -j list ruleset` JSON, read by the nft engine
`kplab.netfilter.nft`): is kube-proxy in nftables mode, does it DNAT Services, and does anything on the
forward path drop `ct state invalid`?

kube-proxy's nftables mode (alpha 1.29, GA 1.33) keeps its rules in `table ip kube-proxy` (and
`ip6 kube-proxy`) and, unlike iptables mode, installs no `ct state invalid drop` (PR #122663): it
relies on `nf_conntrack_tcp_be_liberal` (conntrack.tcpBeLiberal). The mode is nftables when a
`kube-proxy` table holds Service DNAT rules. A drop can be any table's (an operator's own): base
chains hooked at forward, or at prerouting after conntrack (priority > -200), are walked through
`jump`/`goto` statements and verdict maps, skipping jumps whose `ct state` test keeps INVALID out
(`ct state new jump ...`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.netfilter.nft.load import parse_nft
from kplab.netfilter.nft.model import (
    AnonMap,
    AnonSet,
    Chain,
    Ct,
    Match,
    NatStmt,
    NftRuleset,
    Reject,
    Rule,
    SetRef,
    Table,
    Unknown,
    VerdictStmt,
    VMap,
)
from kplab.netfilter.nft.render import render_stmt
from kplab.netfilter.nft.values import CT_STATE_BITS

KUBE_PROXY_TABLE = "kube-proxy"
CONNTRACK_PRIORITY = -200
INVALID = CT_STATE_BITS["invalid"]
_FAMILIES = frozenset({"ip", "ip6", "inet"})


@dataclass(slots=True)
class NftFacts:
    file: str
    kube_proxy_tables: list[str] = field(default_factory=list)  # "ip kube-proxy"
    service_dnat: list[str] = field(default_factory=list)  # "ip kube-proxy chain C (where): dnat to A"
    invalid_drops: list[tuple[str, list[str]]] = field(default_factory=list)  # (where, conditions)
    xt_tables: list[str] = field(default_factory=list)  # tables written by iptables-nft (xt matches)

    @property
    def mode(self) -> str | None:
        """ "nftables" when kube-proxy's nftables table DNATs Services, else None."""
        return "nftables" if self.kube_proxy_tables and self.service_dnat else None

    @property
    def full_drop(self) -> str | None:
        return next((where for where, conds in self.invalid_drops if not conds), None)


def analyse(text: str, file: str) -> NftFacts:
    return facts_of(parse_nft(text, file))


def facts_of(rs: NftRuleset) -> NftFacts:
    facts = NftFacts(rs.file)
    for table in rs.tables.values():
        if table.name == KUBE_PROXY_TABLE and table.family in ("ip", "ip6"):
            facts.kube_proxy_tables.append(table.id)
        for chain in table.chains.values():
            for rule in chain.rules:
                if any(_is_xt(s) for s in rule.stmts) and table.id not in facts.xt_tables:
                    facts.xt_tables.append(table.id)
                dnat = any(isinstance(s, NatStmt) and s.kind == "dnat" for s in rule.stmts)
                if table.name == KUBE_PROXY_TABLE and dnat:
                    facts.service_dnat.append(f"{_where(rs, table, chain, rule)}: {rule.text}")
    for table in rs.tables.values():
        if table.family not in _FAMILIES:
            continue
        for chain in table.chains.values():
            after_ct = chain.hook == "prerouting" and chain.priority > CONNTRACK_PRIORITY
            if chain.hook == "forward" or after_ct:
                _walk(rs, table, chain, (chain.name,), facts.invalid_drops)
    return facts


def _is_xt(stmt: object) -> bool:
    return isinstance(stmt, Unknown) and (stmt.text.startswith('{"xt"') or stmt.text.startswith("xt "))


def _where(rs: NftRuleset, table: Table, chain: Chain, rule: Rule) -> str:
    at = f"nftables[{rule.source.line - 1}]" if rs.json else f"line {rule.source.line}"
    return f"{table.id} chain {chain.name} ({at})"


def _state_mask(m: Match) -> int | None:
    """The `ct state` values a match lets through, as a bit mask (None: not a ct state match)."""
    if not isinstance(m.left, Ct) or m.left.key != "state" or isinstance(m.right, SetRef):
        return None
    keys = m.right.keys if isinstance(m.right, AnonSet) else (m.right,)
    mask = 0
    for key in keys:
        value = key[0] if key else 0
        if isinstance(value, int):
            mask |= value
    return ~mask & 0xFF if m.op == "!=" else mask


def _tests_invalid(m: Match) -> bool:
    mask = _state_mask(m)
    return mask is not None and m.op != "!=" and bool(mask & INVALID)


def _admits_invalid(rule: Rule) -> bool:
    """False if a `ct state` test keeps INVALID packets out of this rule (`ct state new jump ...`)."""
    for stmt in rule.stmts:
        if isinstance(stmt, Match):
            mask = _state_mask(stmt)
            if mask is not None and not mask & INVALID:
                return False
    return True


def _drops(rule: Rule) -> bool:
    return any(isinstance(s, Reject) or (isinstance(s, VerdictStmt) and s.kind == "drop") for s in rule.stmts)


def _targets(table: Table, rule: Rule) -> list[str]:
    out: list[str] = []
    for stmt in rule.stmts:
        if isinstance(stmt, VerdictStmt) and stmt.target is not None:
            out.append(stmt.target)
        elif isinstance(stmt, VMap):
            if isinstance(stmt.data, AnonMap):
                verdicts = [v for _, v in stmt.data.entries]
            else:
                nset = table.sets.get(stmt.data.name)
                elems = nset.elements if nset is not None else []
                verdicts = [e.data for e in elems if isinstance(e.data, VerdictStmt)]
            out += [v.target for v in verdicts if v.target is not None]
    return out


def _walk(
    rs: NftRuleset, table: Table, chain: Chain, path: tuple[str, ...], found: list[tuple[str, list[str]]]
) -> None:
    for rule in chain.rules:
        if _drops(rule) and any(isinstance(s, Match) and _tests_invalid(s) for s in rule.stmts):
            conds = [
                render_stmt(s)
                for s in rule.stmts
                if (isinstance(s, Match) and not _tests_invalid(s)) or isinstance(s, Unknown)
            ]
            where = f"{_where(rs, table, chain, rule)}: {rule.text} (via {' -> '.join(path)})"
            found.append((where, conds))
            continue
        if not _admits_invalid(rule):
            continue
        for name in _targets(table, rule):
            target = table.chains.get(name)
            if target is not None and name not in path:
                _walk(rs, table, target, (*path, name), found)
