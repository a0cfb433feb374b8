"""What an iptables-save dump says about the escaped-NAT reset: Service DNAT rules, and the rules
that drop conntrack INVALID packets on the forward path.

The forward path is walked as the kernel walks it: mangle PREROUTING and FORWARD, then filter
FORWARD (all after conntrack, so `--ctstate INVALID` sees the tracker's verdict), following `-j`/`-g`
into user chains. A chain is not followed past an unconditional ACCEPT/DROP/REJECT/RETURN, so a
drop rule hidden behind one is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.errors import located
from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.extensions import IPTABLES_MATCHES, IPTABLES_TARGETS
from kplab.netfilter.iptables_s import parse_dump as parse_save
from kplab.netfilter.model import Rule, Ruleset, Table
from kplab.netfilter.tracenotes import ipvs_rules
from kplab.untrusted import shown

FORWARD_PATH = (("mangle", "PREROUTING"), ("mangle", "FORWARD"), ("filter", "FORWARD"))
_TERMINAL = frozenset({"ACCEPT", "DROP", "REJECT", "RETURN"})
_HARMLESS_MODULES = frozenset({"comment", "nfacct"})  # they never make a rule match fewer packets


@dataclass(slots=True)
class InvalidDrop:
    """A rule that drops ctstate INVALID, with the jump rules that lead to it from a hook chain."""

    table: str
    rule: Rule
    path: tuple[Rule, ...]
    conditions: list[str]  # what else must match (on the rule or a jump): empty = every INVALID packet

    @property
    def nfacct(self) -> str | None:
        m = self.rule.match("nfacct")
        opt = m.get("--nfacct-name") if m else None
        return opt.value if opt else None


@dataclass(slots=True)
class RuleFacts:
    file: str
    lines: list[str]
    ruleset: Ruleset
    service_dnat: list[Rule] = field(default_factory=list)  # DNAT in kube-proxy's KUBE-SEP-* chains
    other_dnat: list[Rule] = field(default_factory=list)
    invalid_drops: list[InvalidDrop] = field(default_factory=list)
    kube_proxy: bool = False  # kube-proxy iptables-mode chains present
    ipvs: list[Rule] = field(default_factory=list)  # kube-proxy IPVS-mode rules (its ipsets, KUBE-IPVS-*)
    other_backend: str | None = None  # the dump's "# Warning: iptables-legacy tables present ..." line
    version_hint: tuple[str, str] | None = None  # (the oldest kube-proxy that writes it, the evidence)

    @property
    def tables(self) -> list[str]:
        return list(self.ruleset.tables)

    @property
    def forward_path_given(self) -> bool:
        """Whether the dump holds the filter table, where kube-proxy's INVALID drop would be."""
        return "filter" in self.ruleset.tables

    def text(self, rule: Rule) -> str:
        """`file:line: the rule as written` for evidence."""
        line = rule.source.line
        written = self.lines[line - 1] if 0 < line <= len(self.lines) else f"-A {rule.chain} ..."
        return f"{self.file}:{line}: {written.strip()}"

    @property
    def full_drop(self) -> InvalidDrop | None:
        """A drop that catches every INVALID forwarded packet, if there is one."""
        return next((d for d in self.invalid_drops if not d.conditions), None)


def analyse(text: str, file: str) -> RuleFacts:
    """Parse a dump (InputError if malformed) and collect the facts."""
    ruleset = parse_save(text, file)
    check_restorable(ruleset)
    facts = RuleFacts(file, text.split("\n"), ruleset)
    nat = ruleset.tables.get("nat")
    if nat is not None:
        facts.kube_proxy = "KUBE-SERVICES" in nat.chains
        for chain in nat.chains.values():
            for rule in chain.rules:
                if rule.target is not None and rule.target.name == "DNAT":
                    is_service = chain.name.startswith("KUBE-SEP-")
                    (facts.service_dnat if is_service else facts.other_dnat).append(rule)
    for table_name, chain_name in FORWARD_PATH:
        table = ruleset.tables.get(table_name)
        if table is not None and chain_name in table.chains:
            _walk(table, chain_name, (), {chain_name}, facts.invalid_drops)
    facts.ipvs = ipvs_rules(ruleset)
    facts.other_backend = next(
        (
            f"{file}:{n}: {line.strip()}"
            for n, line in enumerate(facts.lines, start=1)
            if _other_backend(line)
        ),
        None,
    )
    facts.version_hint = _version_hint(facts)
    return facts


def _other_backend(line: str) -> bool:
    """iptables-nft-save's (or -legacy-save's) note that the other backend holds tables too."""
    return line.startswith("# Warning: iptables-") and "tables present" in line


def _version_hint(facts: RuleFacts) -> tuple[str, str] | None:
    """The oldest kube-proxy that writes what the dump shows (for advice never older than the node).

    Only markers that survive iptables-save: probabilities are no marker (iptables-save prints the
    kernel's value with 11 decimals whatever kube-proxy wrote)."""
    nat = facts.ruleset.tables.get("nat")
    for chain in nat.chains.values() if nat is not None else ():
        for rule in chain.rules:
            target = rule.target
            if chain.name == "KUBE-POSTROUTING" and target is not None and target.name == "MARK":
                xmark = target.get("--set-xmark")
                if xmark is not None and xmark.value.endswith("/0x0"):
                    return "1.19", f"{facts.text(rule)}  (KUBE-POSTROUTING clears the mark: PR #92035, v1.19)"
    if facts.full_drop is not None:
        return "1.15", facts.text(facts.full_drop.rule)
    return None


def check_restorable(ruleset: Ruleset) -> None:
    """Raise InputError (file:line) for what `iptables-restore` would refuse: a match or target
    iptables does not have, bad values (addresses, probabilities, marks), jump loops and chains
    nested deeper than nf_tables takes. A dump the kernel never held describes no node."""
    for table in ruleset.tables.values():
        for chain in table.chains.values():
            for rule in chain.rules:
                _check_extensions(rule, table)
    compile_ruleset(ruleset, unknown="never-match", indexed=False)


def _check_extensions(rule: Rule, table: Table) -> None:
    where = rule.source
    for match in rule.matches:
        if match.module and match.module not in IPTABLES_MATCHES:
            raise located(where.file, where.line, f"iptables has no match {shown(match.module)}: "
                          "iptables-restore refuses this dump (Couldn't load match)")  # fmt: skip
    target = rule.target
    if target is not None and target.name not in table.chains and target.name not in IPTABLES_TARGETS:
        raise located(where.file, where.line, f"no chain or target {shown(target.name)}: "
                      "iptables-restore refuses this dump (Couldn't load target)")  # fmt: skip


def is_invalid_drop(rule: Rule) -> bool:
    if rule.target is None or rule.target.name not in ("DROP", "REJECT"):
        return False
    return _matches_invalid(rule)


def _state_options(rule: Rule) -> list[tuple[bool, bool]]:
    """(negated, names INVALID) for each `--ctstate`/`--state` test of the rule."""
    out = []
    for module, option in (("conntrack", "--ctstate"), ("state", "--state")):
        m = rule.match(module)
        opt = m.get(option) if m else None
        if opt is not None:
            out.append((opt.negated, "INVALID" in opt.value.replace(",", " ").split()))
    return out


def _matches_invalid(rule: Rule) -> bool:
    return any(not negated and invalid for negated, invalid in _state_options(rule))


def _admits_invalid(rule: Rule) -> bool:
    """False if a state test keeps INVALID packets out (`--ctstate NEW`, `! --ctstate INVALID`)."""
    return all(invalid != negated for negated, invalid in _state_options(rule))


def conditions(rule: Rule) -> list[str]:
    """The matches of `rule` beyond comment/nfacct and the INVALID state test, as `module: opts`."""
    out = []
    for m in rule.matches:
        if m.module in _HARMLESS_MODULES:
            continue
        opts = [o for o in m.options if o.name not in ("--ctstate", "--state")]
        if m.module in ("conntrack", "state") and not opts:
            continue
        words = " ".join(("! " if o.negated else "") + " ".join((o.name, *o.values)) for o in opts)
        out.append(f"{m.module or 'match'}: {words}" if words else m.module)
    return out


def _unconditional(rule: Rule) -> bool:
    return all(m.module in _HARMLESS_MODULES for m in rule.matches)


def _walk(
    table: Table, chain_name: str, path: tuple[Rule, ...], seen: set[str], found: list[InvalidDrop]
) -> None:
    for rule in table.chains[chain_name].rules:
        target = rule.target
        if target is None:
            continue
        if is_invalid_drop(rule):
            conds = [c for jump in path for c in conditions(jump)] + conditions(rule)
            found.append(InvalidDrop(table.name, rule, path, conds))
        elif target.name in table.chains and target.name not in seen and _admits_invalid(rule):
            _walk(table, target.name, (*path, rule), seen | {target.name}, found)
            if target.goto and _unconditional(rule):
                return
        if target.name in _TERMINAL and _unconditional(rule):
            return
