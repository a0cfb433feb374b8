"""Conntrack counters from the two real formats, summed over CPUs.

- `/proc/net/stat/nf_conntrack`: a header line of names, then one row of hex numbers per CPU.
  `entries` is the namespace's table size, repeated on every row (not summed).
- `conntrack -S`: one `cpu=N key=value ...` line per CPU. Its names differ for three counters
  (`error`, `clash_resolve`, `chaintoolong`); they are mapped to the /proc names that
  `kplab.netfilter.conntrack.CtStats` uses.

Counters are per network namespace and count since the namespace (or boot) began.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kplab.errors import located

CONNTRACK_S_NAMES = {"error": "icmp_error", "clash_resolve": "clashres", "chaintoolong": "chainlength"}
_HEX = re.compile(r"^[0-9a-fA-F]{1,16}$")
_PAIR = re.compile(r"^([a-z_]+)=([0-9]{1,20})$")  # 64-bit counters


@dataclass(slots=True)
class CtSample:
    """One reading of the counters: totals over CPUs, and where it came from."""

    file: str
    format: str  # "proc" or "conntrack -S"
    totals: dict[str, int] = field(default_factory=dict)
    cpus: int = 0
    entries: int | None = None  # table size, /proc format only

    def get(self, name: str) -> int | None:
        return self.totals.get(name)


def parse(text: str, file: str) -> CtSample:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise located(file, 1, "empty: expected /proc/net/stat/nf_conntrack or `conntrack -S` output")
    if lines[0][1].split()[0] == "entries":
        return _parse_proc(lines, file)
    if lines[0][1].lstrip().startswith("cpu="):
        return _parse_conntrack_s(lines, file)
    raise located(
        file, lines[0][0], "not conntrack counters: expected a header starting 'entries' or 'cpu=N' lines"
    )


def _parse_proc(lines: list[tuple[int, str]], file: str) -> CtSample:
    header = lines[0][1].split()
    if len(set(header)) != len(header) or not all(re.fullmatch(r"[a-z_]+", h) for h in header):
        raise located(file, lines[0][0], "bad header: expected counter names")
    sample = CtSample(file, "proc", {name: 0 for name in header if name != "entries"})
    for lineno, line in lines[1:]:
        words = line.split()
        if len(words) != len(header) or not all(_HEX.match(w) for w in words):
            raise located(file, lineno, f"expected {len(header)} hex numbers, one per header name")
        for name, word in zip(header, words, strict=True):
            if name == "entries":
                sample.entries = int(word, 16)
            else:
                sample.totals[name] += int(word, 16)
        sample.cpus += 1
    if sample.cpus == 0:
        raise located(file, lines[0][0], "a header but no per-CPU rows")
    return sample


def _parse_conntrack_s(lines: list[tuple[int, str]], file: str) -> CtSample:
    sample = CtSample(file, "conntrack -S")
    for lineno, line in lines:
        words = line.split()
        if not words[0].startswith("cpu="):
            raise located(file, lineno, "expected a 'cpu=N key=value ...' line")
        for word in words:
            m = _PAIR.match(word)
            if m is None:
                raise located(file, lineno, f"expected key=number, got {word[:40]!r}")
            name = CONNTRACK_S_NAMES.get(m.group(1), m.group(1))
            if name != "cpu":
                sample.totals[name] = sample.totals.get(name, 0) + int(m.group(2))
        sample.cpus += 1
    return sample
