"""kube-proxy's own test helpers for restore inputs: the canonical sort (`sortIPTablesRules`) and
the consistency checks (`checkIPTablesRuleJumps`), in pkg/proxy/iptables/proxier_test.go."""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.kubeproxy.savematch import split_words
from kplab.netfilter.model import BUILTIN_CHAINS

BUILTIN_TARGETS = frozenset({"ACCEPT", "REJECT", "DROP", "MARK", "RETURN", "DNAT", "SNAT", "MASQUERADE"})
TOP_LEVEL = frozenset(
    {
        "KUBE-SERVICES",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-FORWARD",
        "KUBE-MARK-MASQ",
        "KUBE-PROXY-FIREWALL",
        "KUBE-FIREWALL",
    }
)


@dataclass(slots=True)
class DumpTable:
    name: str
    chain_lines: dict[str, str] = field(default_factory=dict)
    rules: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


def parse_dump(text: str) -> list[DumpTable]:
    tables: list[DumpTable] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            tables.append(DumpTable(line[1:]))
        elif line.startswith(":"):
            tables[-1].chain_lines[line[1:].split()[0]] = line
        elif line.startswith("-A "):
            tables[-1].rules.setdefault(line.split()[1], []).append(line)
        elif line.startswith("-X "):
            tables[-1].deleted.append(line.split()[1])
    return tables


def _chain_key(name: str) -> tuple[int, str]:
    rank = {"KUBE-NODEPORTS": 0, "KUBE-SERVICES": 1}.get(name, 2 if name.startswith("KUBE-") else 3)
    return (rank, name if rank >= 2 else "")


def _comment(line: str) -> str:
    words = split_words(line)
    for i, word in enumerate(words[:-1]):
        if word == "--comment":
            return words[i + 1]
    return ""


def _service_name(line: str) -> str:
    comment = _comment(line)
    for i, ch in enumerate(comment):
        if ch in " :":
            return comment[:i]
    return comment


def sort_dump(text: str) -> str:
    """`sortIPTablesRules`: tables by name; KUBE-NODEPORTS, KUBE-SERVICES, other KUBE-*, the rest;
    the rules of KUBE-NODEPORTS/KUBE-SERVICES stable-sorted by service name, the nat
    "must be the last rule" rule kept last."""
    out: list[str] = []
    for table in sorted(parse_dump(text), key=lambda t: t.name):
        chains = sorted(set(table.chain_lines) | set(table.rules), key=_chain_key)
        out.append(f"*{table.name}")
        out += [table.chain_lines[c] for c in chains if c in table.chain_lines]
        for chain in chains:
            rules = table.rules.get(chain, [])
            if chain in ("KUBE-NODEPORTS", "KUBE-SERVICES"):
                last = [r for r in rules if "must be the last rule" in r]
                rules = sorted((r for r in rules if r not in last), key=_service_name) + last
            out += rules
        out += [f"-X {c}" for c in sorted(table.deleted, key=_chain_key)]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def chain_rules(text: str, table: str, chain: str) -> list[str]:
    """The ordered rules of one chain (for the fixtures that compare a single chain)."""
    for t in parse_dump(text):
        if t.name == table:
            return list(t.rules.get(chain, []))
    return []


def _jump(line: str) -> str | None:
    words = split_words(line)
    for i, word in enumerate(words[:-1]):
        if word in ("-j", "-g"):
            return words[i + 1]
    return None


def check_jumps(text: str) -> list[str]:
    """`checkIPTablesRuleJumps`: problems found (empty list = consistent)."""
    problems: list[str] = []
    for table in parse_dump(text):
        builtin = set(BUILTIN_CHAINS.get(table.name, ()))
        created = (set(table.chain_lines) | builtin) - set(table.deleted)
        targets: set[str] = set()
        for chain, rules in table.rules.items():
            if chain not in created:
                problems.append(f"{table.name}: rules in chain {chain}, which is not created")
            for rule in rules:
                target = _jump(rule)
                if target is None or target in BUILTIN_TARGETS:
                    continue
                targets.add(target)
                if target not in created:
                    problems.append(f"{table.name}: {chain} jumps to {target}, which is not created")
                elif not table.rules.get(target) and target != "KUBE-NODEPORTS":
                    problems.append(f"{table.name}: {chain} jumps to {target}, which has no rules")
        for chain in sorted(created - targets - TOP_LEVEL - builtin):
            problems.append(f"{table.name}: chain {chain} is created but never jumped to")
    return problems
