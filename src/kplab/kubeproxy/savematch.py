"""One `-A` rule of a restore input, parsed the way iptables attributes options to matches, and
printed the way each libxt extension's `save` function prints it (iptables 1.8.9)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IMPLICIT = {
    "-s": "-s",
    "--source": "-s",
    "-d": "-d",
    "--destination": "-d",
    "-i": "-i",
    "--in-interface": "-i",
    "-o": "-o",
    "--out-interface": "-o",
    "-p": "-p",
    "--protocol": "-p",
}
IMPLICIT_ORDER = ("-s", "-d", "-i", "-o", "-p")
FLAGS = frozenset(
    {
        "--set",
        "--rcheck",
        "--update",
        "--remove",
        "--reap",
        "--rsource",
        "--rdest",
        "--physdev-is-in",
        "--physdev-is-out",
        "--physdev-is-bridged",
        "--random",
        "--random-fully",
        "--persistent",
        "--syn",
    }
)
OWNERS = {
    "--comment": "comment",
    "--dport": "tcp udp sctp",
    "--sport": "tcp udp sctp",
    "--ctstate": "conntrack",
    "--mark": "mark",
    "--src-type": "addrtype",
    "--dst-type": "addrtype",
    "--mode": "statistic",
    "--probability": "statistic",
    "--name": "recent",
    "--set": "recent",
    "--rcheck": "recent",
    "--update": "recent",
    "--remove": "recent",
    "--seconds": "recent",
    "--reap": "recent",
    "--rsource": "recent",
    "--rdest": "recent",
    "--mask": "recent",
    "--nfacct-name": "nfacct",
    "--physdev-is-in": "physdev",
    "--physdev-is-out": "physdev",
}
SAVE_ORDER = {
    "tcp": ("--sport", "--dport"),
    "udp": ("--sport", "--dport"),
    "sctp": ("--sport", "--dport"),
    "addrtype": ("--src-type", "--dst-type"),
    "statistic": ("--mode", "--probability"),
    "physdev": ("--physdev-is-in", "--physdev-is-out", "--physdev-is-bridged"),
}
CTSTATE_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(slots=True)
class Opt:
    name: str
    values: list[str]
    negated: bool = False


@dataclass(slots=True)
class Parsed:
    chain: str
    implicit: dict[str, Opt] = field(default_factory=dict)
    matches: list[tuple[str, list[Opt]]] = field(default_factory=list)
    target: str | None = None
    target_opts: list[Opt] = field(default_factory=list)
    goto: bool = False


def split_words(line: str) -> list[str]:
    """Blank-separated words; a double-quoted run is one word (backslash escapes inside quotes)."""
    words: list[str] = []
    buf: list[str] = []
    quoted = escaped = had_quote = False
    for ch in line:
        if quoted:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            else:
                buf.append(ch)
        elif ch == '"':
            quoted = had_quote = True
        elif ch in " \t":
            if buf or had_quote:
                words.append("".join(buf))
                buf, had_quote = [], False
        else:
            buf.append(ch)
    if buf or had_quote:
        words.append("".join(buf))
    return words


def parse_rule(line: str) -> Parsed:
    words = split_words(line)
    rule = Parsed(chain=words[1])
    negate = False
    i = 2
    while i < len(words):
        word = words[i]
        i += 1
        if word == "!":
            negate = True
            continue
        if word in ("-m", "--match"):
            rule.matches.append((words[i], []))
            i += 1
        elif word in ("-j", "--jump", "-g", "--goto"):
            rule.target, rule.goto = words[i], word in ("-g", "--goto")
            i += 1
        elif word in IMPLICIT:
            rule.implicit[IMPLICIT[word]] = Opt(IMPLICIT[word], [words[i]], negate)
            i += 1
        else:
            values = [] if word in FLAGS else [words[i]]
            i += len(values)
            _owner(rule, word).append(Opt(word, values, negate))
        negate = False
    return rule


def _owner(rule: Parsed, option: str) -> list[Opt]:
    if rule.target is not None:
        return rule.target_opts
    owners = OWNERS.get(option, "").split()
    for module, opts in reversed(rule.matches):
        if module in owners:
            return opts
    return rule.matches[-1][1]


def save_string(value: str) -> str:
    """`xtables_save_string`, including its leading space."""
    if value and all(ch in NO_QUOTE for ch in value):
        return " " + value
    escaped = "".join("\\" + ch if ch in "\"\\'" else ch for ch in value)
    return f' "{escaped}"'


def stored_probability(text: str) -> str:
    """libxt_statistic: the kernel keeps round(p * 2^31) as a u32; save prints `%.11f` of it."""
    stored = int(float(text) * 0x80000000 + 0.5)
    return f"{stored / 0x80000000:.11f}"


def address(text: str) -> str:
    """An address as iptables prints it: the network with its prefix length (`/32` added)."""
    return str(ipaddress.ip_network(text, strict=False))


def _neg(opt: Opt) -> str:
    return " !" if opt.negated else ""


def render_rule(rule: Parsed) -> str:
    parts = [f"-A {rule.chain}"]
    for key in IMPLICIT_ORDER:
        opt = rule.implicit.get(key)
        if opt is not None:
            value = address(opt.values[0]) if key in ("-s", "-d") else opt.values[0]
            parts.append(("! " if opt.negated else "") + f"{key} {value}")
    for module, opts in rule.matches:
        parts.append(f"-m {module}{_match_save(module, opts)}")
    if rule.target is not None:
        parts.append(
            f"{'-g' if rule.goto else '-j'} {rule.target}{_target_save(rule.target, rule.target_opts)}"
        )
    return " ".join(parts)


def _match_save(module: str, opts: list[Opt]) -> str:
    by = {o.name: o for o in opts}
    if module == "comment":
        return " --comment" + save_string(by["--comment"].values[0])
    if module == "conntrack":
        states = by["--ctstate"].values[0].split(",")
        ordered = ",".join(s for s in CTSTATE_ORDER if s in states)
        return f"{_neg(by['--ctstate'])} --ctstate {ordered}"
    if module == "mark":
        return f"{_neg(by['--mark'])} --mark {_mark_pair(by['--mark'].values[0], full_mask_short=True)}"
    if module == "recent":
        return _recent_save(by)
    if module == "nfacct":
        return " --nfacct-name " + save_string(by["--nfacct-name"].values[0])
    order = SAVE_ORDER.get(module)
    if order is None:
        return "".join(f"{_neg(o)} {o.name}" + "".join(f" {v}" for v in o.values) for o in opts)
    out = ""
    for name in order:
        opt = by.get(name)
        if opt is not None:
            value = stored_probability(opt.values[0]) if name == "--probability" else " ".join(opt.values)
            out += f"{_neg(opt)} {name}" + (f" {value}" if opt.values else "")
    return out


def _recent_save(by: dict[str, Opt]) -> str:
    """libxt_recent save: command, --seconds, --reap, --hitcount, --rttl, --name, --mask, side."""
    out = ""
    for command in ("--set", "--rcheck", "--update", "--remove"):
        if command in by:
            out += f"{_neg(by[command])} {command}"
    if "--seconds" in by:
        out += f" --seconds {by['--seconds'].values[0]}"
    if "--reap" in by:
        out += " --reap"
    name = by["--name"].values[0] if "--name" in by else "DEFAULT"
    mask = by["--mask"].values[0] if "--mask" in by else "255.255.255.255"
    return out + f" --name {name} --mask {mask}" + (" --rdest" if "--rdest" in by else " --rsource")


def _mark_pair(text: str, *, full_mask_short: bool) -> str:
    value, _, mask = text.partition("/")
    v = int(value, 0)
    m = int(mask, 0) if mask else 0xFFFFFFFF
    if full_mask_short and m == 0xFFFFFFFF:
        return f"0x{v:x}"
    return f"0x{v:x}/0x{m:x}"


def _target_save(target: str, opts: list[Opt]) -> str:
    by = {o.name: o for o in opts}
    if target == "REJECT":
        return " --reject-with " + (
            by["--reject-with"].values[0] if "--reject-with" in by else "icmp-port-unreachable"
        )
    if target == "MARK":
        return " --set-xmark " + _xmark(by)
    return "".join(f" {o.name}" + "".join(f" {v}" for v in o.values) for o in opts)


def _xmark(by: dict[str, Opt]) -> str:
    """libxt_MARK: every form is stored as (value, mask) and printed `--set-xmark 0x%x/0x%x`."""
    if "--set-xmark" in by:
        return _mark_pair(by["--set-xmark"].values[0], full_mask_short=False)
    if "--or-mark" in by:
        m = int(by["--or-mark"].values[0], 0)
        return f"0x{m:x}/0x{m:x}"
    if "--xor-mark" in by:
        return f"0x{int(by['--xor-mark'].values[0], 0):x}/0x0"
    if "--and-mark" in by:
        return f"0x0/0x{~int(by['--and-mark'].values[0], 0) & 0xFFFFFFFF:x}"
    value, _, mask = by["--set-mark"].values[0].partition("/")
    v, m = int(value, 0), (int(mask, 0) if mask else 0xFFFFFFFF)
    return f"0x{v:x}/0x{v | m:x}"
