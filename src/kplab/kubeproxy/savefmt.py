"""What the real `iptables-save` (iptables 1.8.9, nf_tables backend) prints after a restore input
has been loaded into an empty network namespace: the save-format canonicalisation.

Checked against this machine's iptables-save (see tests/kubeproxy/test_kernel.py):
- tables in the order raw, mangle, filter, security, nat; built-in chains first (hook order, policy
  ACCEPT), then user chains sorted by name; rules chain by chain in that same order;
- each rule as `-s -d -i -o -p` (addresses with a prefix length, `!` in front), then the `-m`
  matches in the order written, each printing its options in its own fixed order, then the target;
- `xtables_save_string` quoting: a value made only of `[A-Za-z0-9_-]` stays bare, anything else is
  double-quoted with `"`, `\\` and `'` escaped (so `--comment x` but `--comment "ns1/svc1:p80"`);
- statistic prints `%.11f` of the probability as the kernel stores it (round(p * 2^31) / 2^31);
- `-m recent` gains `--mask 255.255.255.255 --rsource`; REJECT gains `--reject-with
  icmp-port-unreachable`; marks print as `0x%x`; MARK `--or-mark M` prints `--set-xmark M/M`,
  `--xor-mark M` prints `--set-xmark M/0x0`;
- `--nfacct-name` is followed by two spaces (libxt_nfacct prints a space, then the string's own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.kubeproxy.savematch import Parsed, parse_rule, render_rule

SAVE_TABLE_ORDER = ("raw", "mangle", "filter", "security", "nat")
BUILTIN = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}


@dataclass(slots=True)
class TableText:
    chains: list[str] = field(default_factory=list)
    rules: list[Parsed] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)


def split_tables(text: str) -> dict[str, TableText]:
    """The restore input's tables (a later `*table` section replaces an earlier one, as a flush does)."""
    tables: dict[str, TableText] = {}
    current: TableText | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = tables[line[1:]] = TableText()
        elif current is None:
            continue
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if name not in current.chains:
                current.chains.append(name)
        elif line.startswith("-A "):
            current.rules.append(parse_rule(line))
        elif line.startswith("-X "):
            current.deleted.add(line.split()[1])
    return tables


def save_text(restore: str) -> str:
    """The lines `iptables-save` prints (no comment header, counters `[0:0]`) after loading `restore`."""
    out: list[str] = []
    tables = split_tables(restore)
    for name in SAVE_TABLE_ORDER:
        if name not in tables:
            continue
        table = tables[name]
        builtins = BUILTIN[name]
        users = sorted(c for c in table.chains if c not in builtins and c not in table.deleted)
        out.append(f"*{name}")
        out += [f":{c} ACCEPT [0:0]" for c in builtins]
        out += [f":{c} - [0:0]" for c in users]
        by_chain: dict[str, list[Parsed]] = {}
        for rule in table.rules:
            by_chain.setdefault(rule.chain, []).append(rule)
        for chain in (*builtins, *users):
            out += [render_rule(rule) for rule in by_chain.get(chain, [])]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def strip_save_noise(text: str) -> list[str]:
    """Real `iptables-save` output without comment lines and with counters zeroed, for comparison."""
    lines = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            head, _, _ = line.rpartition(" [")
            line = f"{head} [0:0]"
        lines.append(line)
    return lines
