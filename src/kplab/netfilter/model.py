"""The ruleset model: tables, chains and rules as plain data.

This is the one structure the parser (`iptables_save`), the kube-proxy generator
(`kplab.kubeproxy`), the evaluator (`traversal`) and the renderer share.

A rule keeps its arguments in the order they were written, grouped as iptables groups them:
the implicit matches (`-s -d -p -i -o -f`, module ""), then each `-m MODULE` with its options,
then the target (`-j`/`-g`) with its options. Keeping the written order and the quoting is what
lets a dump produced by the real `iptables-save` render back byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}

STANDARD_TARGETS = frozenset({"ACCEPT", "DROP", "RETURN", "QUEUE"})


@dataclass(frozen=True, slots=True)
class Source:
    """Where a rule or chain came from: a file (or `<generated>`) and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Option:
    """One option: `--dport 80`, `! --ctstate INVALID`, `-s 10.0.0.0/8`.

    `values` are the words after the option name, unquoted. `quoted[i]` says whether word i was
    written in double quotes (the renderer writes it back the same way).
    """

    name: str
    values: tuple[str, ...] = ()
    negated: bool = False
    quoted: tuple[bool, ...] = ()

    @property
    def value(self) -> str:
        """The values joined by a space (most options have exactly one)."""
        return " ".join(self.values)


@dataclass(frozen=True, slots=True)
class Match:
    """`-m MODULE opts...`; module "" holds the implicit matches (`-s -d -p -i -o -f`)."""

    module: str
    options: tuple[Option, ...] = ()

    def get(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class Target:
    """`-j NAME opts...` or, with `goto`, `-g NAME`."""

    name: str
    options: tuple[Option, ...] = ()
    goto: bool = False

    def get(self, name: str) -> Option | None:
        for opt in self.options:
            if opt.name == name:
                return opt
        return None


@dataclass(slots=True)
class Rule:
    """One rule of a chain. `target` is None for a rule with no `-j` (it only counts)."""

    chain: str
    matches: tuple[Match, ...] = ()
    target: Target | None = None
    source: Source = Source("<generated>", 0)
    counters: tuple[int, int] | None = None  # `[pkts:bytes]` prefix, iptables-save -c style

    def match(self, module: str) -> Match | None:
        for m in self.matches:
            if m.module == module:
                return m
        return None


@dataclass(slots=True)
class Chain:
    name: str
    policy: str | None = None  # ACCEPT/DROP for built-in chains; None ("-") for user chains
    counters: tuple[int, int] = (0, 0)
    rules: list[Rule] = field(default_factory=list)
    source: Source = Source("<generated>", 0)

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@dataclass(slots=True)
class Table:
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)  # in declaration order
    deleted: list[str] = field(default_factory=list)  # `-X NAME` lines of a restore input
    source: Source = Source("<generated>", 0)

    def chain(self, name: str) -> Chain:
        """The chain named `name`, created (as a user chain) if missing."""
        found = self.chains.get(name)
        if found is None:
            found = self.chains[name] = Chain(name)
        return found


@dataclass(slots=True)
class Ruleset:
    """Tables in the order they appear. `header`/`footer` keep iptables-save's comment lines."""

    tables: dict[str, Table] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)

    def table(self, name: str) -> Table:
        found = self.tables.get(name)
        if found is None:
            found = self.tables[name] = Table(name)
        return found
