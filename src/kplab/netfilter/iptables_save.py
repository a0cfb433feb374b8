"""`iptables-save` dumps and `iptables-restore` inputs: parse to a Ruleset, render back to text.

`parse` accepts what the real `iptables-restore` accepts (tables raw/mangle/nat/filter/security,
`:CHAIN POLICY [p:b]` lines, `-A`/`-I`/`-D`/`-N`/`-X`/`-F`/`-P`/`-Z` commands, `[p:b]` and `-c`
rule counters, `COMMIT`) and is as strict as it about words: an unquoted multi-word comment is a
`Bad argument`. `lenient=True` accepts what kube-proxy's test parser accepts (multi-word values
without quotes, rules on chains never declared). Parsing checks syntax only; what values mean
(addresses, ports, marks) is checked when the ruleset is compiled (`kplab.netfilter.compiler`).
Every table, chain and rule keeps its `Source(file, line)`. Bad input raises
`InputError("file:line: what is wrong")`.

`render` writes the ruleset in iptables-save's layout. A dump produced by the real iptables-save
renders back byte for byte, its `#` comment lines aside (they are kept as header and footer).
"""

from __future__ import annotations

import re

from kplab.errors import located
from kplab.netfilter.bulk import gc_paused
from kplab.netfilter.model import BUILTIN_CHAINS, Chain, Option, Rule, Ruleset, Source, Table
from kplab.netfilter.rulespec import SpecError, parse_rule_words
from kplab.netfilter.tokenize import BLANKS, TokenizeError, Word, needs_quotes, quote, split_words

MAX_CHAIN_NAME = 28  # XT_EXTENSION_MAXNAMELEN - 1
_COUNTERS = re.compile(r"\[([0-9]{1,20}):([0-9]{1,20})\]")  # 64-bit counters
_POLICIES = frozenset({"ACCEPT", "DROP"})
_COMMANDS = {
    "-A": "-A",
    "--append": "-A",
    "-I": "-I",
    "--insert": "-I",
    "-D": "-D",
    "--delete": "-D",
    "-N": "-N",
    "--new-chain": "-N",
    "-X": "-X",
    "--delete-chain": "-X",
    "-F": "-F",
    "--flush": "-F",
    "-P": "-P",
    "--policy": "-P",
    "-Z": "-Z",
    "--zero": "-Z",
}


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


class _LineError(Exception):
    """A problem on the current line; `parse` turns it into `file:line: message`."""


def parse(text: str, file: str = "<input>", *, lenient: bool = False) -> Ruleset:
    """The ruleset of an iptables-save dump or iptables-restore input. Raises InputError."""
    parser = _Parser(file, lenient)
    with gc_paused():
        for lineno, line in enumerate(text.split("\n"), start=1):
            try:
                parser.line(lineno, line)
            except (_LineError, SpecError, TokenizeError) as exc:
                raise located(file, lineno, str(exc)) from None
    if parser.table is not None:
        raise located(file, parser.table.source.line, f"table '{parser.table.name}' has no COMMIT")
    return parser.ruleset


class _Parser:
    def __init__(self, file: str, lenient: bool) -> None:
        self.file = file
        self.lenient = lenient
        self.ruleset = Ruleset()
        self.table: Table | None = None

    def line(self, lineno: int, line: str) -> None:
        if not line.strip(" \t"):
            return
        if line.startswith("#"):
            (self.ruleset.footer if self.ruleset.tables else self.ruleset.header).append(line)
            return
        if line.startswith("*"):
            self.start_table(lineno, line[1:])
            return
        if self.table is None:
            raise _LineError(f"'{line.strip()[:40]}' outside a table (expected '*table')")
        if line.startswith(":"):
            self.declare_chain(self.table, lineno, line[1:])
            return
        words = split_words(line)
        if len(words) == 1 and words[0] == Word("COMMIT", False):
            self.table = None
        else:
            self.command(self.table, lineno, words)

    def start_table(self, lineno: int, name: str) -> None:
        if self.table is not None:
            raise _LineError(f"table '{name}' starts before COMMIT of table '{self.table.name}'")
        if name not in BUILTIN_CHAINS:
            raise _LineError(f"unknown table '{name}'")
        self.table = self.ruleset.table(name)
        if self.table.source.line == 0:
            self.table.source = Source(self.file, lineno)

    def declare_chain(self, table: Table, lineno: int, rest: str) -> None:
        parts = [part for part in re.split(r"[ \t]+", rest) if part]
        if not parts or len(parts) > 3:
            raise _LineError("chain line must be ':NAME POLICY [packets:bytes]'")
        name = parts[0]
        policy = parts[1] if len(parts) > 1 else "-"
        self.check_chain_name(name)
        builtin = name in BUILTIN_CHAINS[table.name]
        if policy != "-" and not (builtin and policy in _POLICIES):
            what = "a built-in chain" if builtin else "a user chain (use '-')"
            raise _LineError(f"bad policy '{policy}' for {what} '{name}'")
        counters = (0, 0)
        if len(parts) == 3:
            found = _COUNTERS.fullmatch(parts[2])
            if found is None:
                raise _LineError(f"bad chain counters '{parts[2]}' (expected [packets:bytes])")
            counters = (int(found.group(1)), int(found.group(2)))
        chain = table.chain(name)
        chain.policy = None if policy == "-" else policy
        chain.counters = counters
        chain.rules.clear()  # declaring a chain in a restore input flushes it (and revives it)
        if name in table.deleted:
            table.deleted.remove(name)
        chain.source = Source(self.file, lineno)

    @staticmethod
    def check_chain_name(name: str) -> None:
        if len(name) > MAX_CHAIN_NAME:
            raise _LineError(f"chain name '{name}' is too long ({MAX_CHAIN_NAME} characters at most)")
        if (
            name.startswith(("-", "!"))
            or not name.isprintable()
            or any(c in BLANKS or c == '"' for c in name)
        ):
            raise _LineError(f"invalid chain name '{name}'")

    def command(self, table: Table, lineno: int, words: list[Word]) -> None:
        counters: tuple[int, int] | None = None
        found = _COUNTERS.fullmatch(words[0].text) if not words[0].quoted else None
        if found is not None:
            counters = (int(found.group(1)), int(found.group(2)))
            words = words[1:]
        if not words or words[0].quoted or words[0].text not in _COMMANDS:
            first = words[0].text if words else ""
            raise _LineError(f"unknown command '{first}' (expected -A, -I, -D, -N, -X, -F, -P or -Z)")
        verb = _COMMANDS[words[0].text]
        args = words[1:]
        if verb in ("-A", "-I", "-D"):
            self.rule_command(table, lineno, verb, args, counters)
        else:
            self.chain_command(table, lineno, verb, [w.text for w in args])

    def existing_chain(self, table: Table, name: str, lineno: int) -> Chain:
        chain = table.chains.get(name)
        if chain is not None:
            return chain
        if name in BUILTIN_CHAINS[table.name] or self.lenient:
            self.check_chain_name(name)
            chain = table.chain(name)
            chain.source = Source(self.file, lineno)
            return chain
        raise _LineError(f"chain '{name}' does not exist in table '{table.name}'")

    def rule_command(
        self, table: Table, lineno: int, verb: str, args: list[Word], counters: tuple[int, int] | None
    ) -> None:
        if not args:
            raise _LineError(f"{verb} needs a chain name")
        chain = self.existing_chain(table, args[0].text, lineno)
        args = args[1:]
        position: int | None = None
        if verb in ("-I", "-D") and args and not args[0].quoted and _is_number(args[0].text):
            position = int(args[0].text)
            args = args[1:]
        if verb == "-D" and position is not None:
            if args:
                raise _LineError(f"Bad argument '{args[0].text}'")
            self.delete_rule_at(chain, position)
            return
        spec = parse_rule_words(args, lenient=self.lenient)
        rule = Rule(chain.name, spec.matches, spec.target, Source(self.file, lineno))
        rule.counters = spec.counters if spec.counters is not None else counters
        if verb == "-A":
            chain.rules.append(rule)
        elif verb == "-I":
            self.insert_rule(chain, position or 1, rule)
        else:
            self.delete_rule_like(chain, rule)

    @staticmethod
    def insert_rule(chain: Chain, position: int, rule: Rule) -> None:
        if not 1 <= position <= len(chain.rules) + 1:
            raise _LineError(f"index of insertion too big: {position} (chain '{chain.name}')")
        chain.rules.insert(position - 1, rule)

    @staticmethod
    def delete_rule_at(chain: Chain, position: int) -> None:
        if not 1 <= position <= len(chain.rules):
            raise _LineError(f"index of deletion too big: {position} (chain '{chain.name}')")
        del chain.rules[position - 1]

    @staticmethod
    def delete_rule_like(chain: Chain, rule: Rule) -> None:
        wanted = render_rule(rule, counters=False)
        for index, existing in enumerate(chain.rules):
            if render_rule(existing, counters=False) == wanted:
                del chain.rules[index]
                return
        raise _LineError(f"bad rule (does a matching rule exist in chain '{chain.name}'?)")

    def chain_command(self, table: Table, lineno: int, verb: str, args: list[str]) -> None:
        limits = {"-N": (1, 1), "-X": (0, 1), "-F": (0, 1), "-P": (2, 3), "-Z": (0, 1)}
        low, high = limits[verb]
        if not low <= len(args) <= high:
            raise _LineError(f"wrong number of arguments for {verb}")
        if verb == "-N":
            self.check_chain_name(args[0])
            if args[0] in table.chains or args[0] in BUILTIN_CHAINS[table.name]:
                raise _LineError(f"chain '{args[0]}' already exists")
            table.chain(args[0]).source = Source(self.file, lineno)
            return
        chains = [self.existing_chain(table, args[0], lineno)] if args else list(table.chains.values())
        if verb == "-X":
            for chain in chains:
                if chain.name in BUILTIN_CHAINS[table.name]:
                    raise _LineError(f"cannot delete built-in chain '{chain.name}'")
                if chain.name not in table.deleted:
                    table.deleted.append(chain.name)
        elif verb == "-F":
            for chain in chains:
                chain.rules.clear()
        elif verb == "-Z":
            for chain in chains:
                chain.counters = (0, 0)
        else:
            self.set_policy(table, chains[0], args[1])

    @staticmethod
    def set_policy(table: Table, chain: Chain, policy: str) -> None:
        if chain.name not in BUILTIN_CHAINS[table.name] or policy not in _POLICIES:
            raise _LineError(f"bad policy '{policy}' for chain '{chain.name}'")
        chain.policy = policy


def render(ruleset: Ruleset, *, counters: bool = True) -> str:
    """The ruleset as iptables-save writes it (with `counters`, as `iptables-save -c` does)."""
    lines = list(ruleset.header)
    for table in ruleset.tables.values():
        lines.append(f"*{table.name}")
        for chain in table.chains.values():
            packets, nbytes = chain.counters if counters else (0, 0)
            lines.append(f":{chain.name} {chain.policy or '-'} [{packets}:{nbytes}]")
        for chain in table.chains.values():
            lines.extend(render_rule(rule, counters=counters) for rule in chain.rules)
        lines.extend(f"-X {name}" for name in table.deleted)
        lines.append("COMMIT")
    lines.extend(ruleset.footer)
    return "\n".join(lines) + "\n"


def render_rule(rule: Rule, *, counters: bool = True) -> str:
    """One `-A CHAIN ...` line (with `[p:b] ` in front when `counters` and the rule has them)."""
    parts: list[str] = []
    if counters and rule.counters is not None:
        parts.append(f"[{rule.counters[0]}:{rule.counters[1]}]")
    parts += ["-A", rule.chain]
    parts.extend(rule_words(rule))
    return " ".join(parts)


# Options that iptables-save prints with two spaces before the value (libxt_nfacct's save
# writes " --nfacct-name  %s"): written the same way so that a dump renders back byte for byte.
_WIDE_OPTIONS = frozenset({("nfacct", "--nfacct-name")})


def rule_words(rule: Rule) -> list[str]:
    """The rule's matches and target as iptables-save words (what follows `-A CHAIN`)."""
    parts: list[str] = []
    for match in rule.matches:
        if match.module:
            parts += ["-m", match.module]
        for opt in match.options:
            words = _option_words(opt)
            if (match.module, opt.name) in _WIDE_OPTIONS and len(words) > 1:
                words[-2] += " "
            parts.extend(words)
    target = rule.target
    if target is not None:
        parts += ["-g" if target.goto else "-j", target.name]
        for opt in target.options:
            parts.extend(_option_words(opt))
    return parts


def _option_words(opt: Option) -> list[str]:
    words = ["!", opt.name] if opt.negated else [opt.name]
    for index, value in enumerate(opt.values):
        was_quoted = index < len(opt.quoted) and opt.quoted[index]
        words.append(quote(value) if was_quoted or needs_quotes(value) else value)
    return words
