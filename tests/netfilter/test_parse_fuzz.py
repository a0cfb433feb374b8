"""Fuzzing the parser: any text gives a Ruleset or an InputError, and render/parse round-trips."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.errors import InputError
from kplab.netfilter.iptables_save import parse, render

from .helpers import without_sources

WORDS = [
    "*filter",
    "*nat",
    "*raw",
    "*mangle",
    "*security",
    "*bogus",
    "COMMIT",
    ":INPUT",
    ":FOO",
    ":BAR",
    "ACCEPT",
    "DROP",
    "-",
    "[0:0]",
    "[1:2]",
    "[x:1]",
    "-A",
    "-I",
    "-D",
    "-N",
    "-X",
    "-F",
    "-P",
    "-Z",
    "-c",
    "1",
    "2",
    "INPUT",
    "FOO",
    "BAR",
    "PREROUTING",
    "-s",
    "-d",
    "-p",
    "tcp",
    "udp",
    "-i",
    "-o",
    "-f",
    "!",
    "-m",
    "-j",
    "-g",
    "comment",
    "--comment",
    '"a b"',
    '"x',
    'y"',
    '""',
    '"\\""',
    "tcp",
    "--dport",
    "80",
    "80:90",
    "conntrack",
    "--ctstate",
    "NEW",
    "mark",
    "--mark",
    "0x4000/0x4000",
    "recent",
    "--set",
    "--rcheck",
    "--name",
    "statistic",
    "--mode",
    "random",
    "--probability",
    "0.5",
    "DNAT",
    "--to-destination",
    "10.0.0.1:80",
    "MARK",
    "--or-mark",
    "nfacct",
    "--nfacct-name",
    "frob",
    "--wobble",
    "--",
    "#",
    "# x",
    "\t",
    "\\",
    "\r",
    "é",
    "１",
    "²",
    "-Q",
    "KUBE-SVC-X",
    "10.0.0.0/8",
    "multiport",
    "--dports",
    "1,2",
]

line = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)
structured = st.lists(line, max_size=25).map("\n".join)
anything = st.one_of(st.text(max_size=300), structured)


def _check(text: str, lenient: bool) -> None:
    try:
        ruleset = parse(text, "fuzz", lenient=lenient)
    except InputError as exc:
        assert str(exc).startswith("fuzz:")
        return
    rendered = render(ruleset)
    again = parse(rendered, "rendered", lenient=lenient)
    assert without_sources(again) == without_sources(ruleset)
    assert render(again) == rendered


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_strict_parse_never_crashes_and_round_trips(text):
    _check(text, lenient=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anything)
def test_lenient_parse_never_crashes_and_round_trips(text):
    _check(text, lenient=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(line, max_size=8))
def test_valid_tables_round_trip(lines):
    body = "\n".join(lines)
    text = f"*filter\n:INPUT ACCEPT [0:0]\n:FOO - [0:0]\n:BAR - [0:0]\n{body}\nCOMMIT\n"
    _check(text, lenient=False)
    _check(text, lenient=True)
