"""`sysctl -a` output (or any subset of it, or sysctl.conf lines) as a key -> value map.

Accepted lines: `key = value`, `key=value`, `/`-separated keys (`net/netfilter/...`), blank lines
and `#`/`;` comments. Anything else is bad input (`file:line: ...`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kplab.errors import located
from kplab.untrusted import shown

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/*:]*$")

BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal"
LOOSE = "net.netfilter.nf_conntrack_tcp_loose"
IGNORE_INVALID_RST = "net.netfilter.nf_conntrack_tcp_ignore_invalid_rst"
CT_MAX = "net.netfilter.nf_conntrack_max"
CT_COUNT = "net.netfilter.nf_conntrack_count"
ESTABLISHED_TIMEOUT = "net.netfilter.nf_conntrack_tcp_timeout_established"

# Other spellings of the same knobs: the global alias and the pre-4.x ip_conntrack names.
ALIASES: dict[str, tuple[str, ...]] = {
    BE_LIBERAL: ("net.ipv4.netfilter.ip_conntrack_tcp_be_liberal",),
    LOOSE: ("net.ipv4.netfilter.ip_conntrack_tcp_loose",),
    CT_MAX: ("net.nf_conntrack_max", "net.ipv4.netfilter.ip_conntrack_max"),
    CT_COUNT: ("net.ipv4.netfilter.ip_conntrack_count",),
    ESTABLISHED_TIMEOUT: ("net.ipv4.netfilter.ip_conntrack_tcp_timeout_established",),
}


@dataclass(slots=True)
class Sysctls:
    file: str
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def find(self, key: str) -> str | None:
        """The key under which `key` (or one of its aliases) was given, if any."""
        for name in (key, *ALIASES.get(key, ())):
            if name in self.values:
                return name
        return None

    def integer(self, key: str) -> int | None:
        """The integer value of `key` (or an alias); None if absent; bad input if not an integer."""
        name = self.find(key)
        if name is None:
            return None
        text = self.values[name].strip()
        if not re.fullmatch(r"-?[0-9]{1,19}", text):  # a kernel long at most
            raise located(self.file, self.lines[name], f"{name}: expected an integer, got {shown(text)}")
        return int(text)

    def where(self, key: str) -> str:
        """`file:line: key = value` for evidence."""
        name = self.find(key)
        if name is None:
            return f"{key}: not given"
        return f"{self.file}:{self.lines[name]}: {name} = {self.values[name].strip()}"


def parse(text: str, file: str) -> Sysctls:
    result = Sysctls(file)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip().replace("/", ".").strip(".")
        if not sep or not _KEY.match(key):
            raise located(file, lineno, f"not a sysctl line (expected 'key = value'): {raw[:80]!r}")
        result.values[key] = value.strip()
        result.lines[key] = lineno
    if not result.values:
        raise located(file, 1, "no sysctl lines (expected 'key = value' lines as `sysctl -a` prints them)")
    return result
