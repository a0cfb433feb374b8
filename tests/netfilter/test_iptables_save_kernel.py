"""The real kernel as oracle: iptables-restore, iptables-save, then parse + render byte for byte."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kplab.lab.netns import Lab
from kplab.netfilter.iptables_save import parse, render

from .helpers import DATA, strip_comments

NFACCT_TOOL = Path(__file__).resolve().parent / "nfacct_create.py"
NFACCT_OBJECTS = ["ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"]
INPUTS = [
    *sorted((DATA / "dumps" / "inputs").glob("*.rules")),
    DATA / "dumps" / "kube-proxy" / "overall_current" / "expected.rules",
    DATA / "dumps" / "kube-proxy" / "bad_ips" / "expected.rules",
    DATA / "dumps" / "kube-proxy" / "sync_repeated" / "expected.rules",  # later steps are partial syncs
]


@pytest.mark.kernel
def test_live_dumps_render_back_byte_for_byte(lab: Lab) -> None:
    assert len(INPUTS) >= 6
    for index, path in enumerate(INPUTS):
        ns = lab.netns(f"rt{index}")
        ns.run([sys.executable, str(NFACCT_TOOL), *NFACCT_OBJECTS])
        ns.run(["iptables-restore"], input=path.read_text())
        for flags in ([], ["-c"]):
            saved = ns.run(["iptables-save", *flags]).stdout
            ruleset = parse(saved, f"{path.name}.save")
            assert sum(len(c.rules) for t in ruleset.tables.values() for c in t.chains.values()) > 0
            rendered = render(ruleset, counters=bool(flags))
            assert strip_comments(rendered) == strip_comments(saved), path


@pytest.mark.kernel
def test_what_kplab_renders_loads_into_the_kernel_unchanged(lab: Lab) -> None:
    """Rendering a restore input (reordered the iptables-save way) loads and saves to the same rules."""
    path = DATA / "dumps" / "inputs" / "calico.rules"
    direct, via_kplab = lab.netns("direct"), lab.netns("kplab")
    direct.run(["iptables-restore"], input=path.read_text())
    via_kplab.run(["iptables-restore"], input=render(parse(path.read_text(), str(path))))
    assert strip_comments(direct.run(["iptables-save"]).stdout) == strip_comments(
        via_kplab.run(["iptables-save"]).stdout
    )


MARK_FORMS = [
    ("MARK", "--set-xmark 0x4/0xff"),
    ("MARK", "--set-mark 7"),
    ("MARK", "--set-mark 0x5/0x7"),
    ("MARK", "--set-mark 0x10/0x3"),
    ("MARK", "--or-mark 0x4000"),
    ("MARK", "--xor-mark 0x4000"),
    ("MARK", "--and-mark 0x4000"),
    ("CONNMARK", "--set-mark 0x5/0x7"),
    ("CONNMARK", "--set-xmark 0x8/0xc"),
]
PROBABILITIES = ["0.5", "0.3333333333", "0.33333", "0.2", "0.1000000000", "0.0000099999", "0.99999", "1"]


@pytest.mark.kernel
def test_mark_forms_and_probabilities_are_stored_as_kplab_computes(lab: Lab) -> None:
    """The kernel is the oracle for the MARK/CONNMARK translations (`xmark_of`) and for the stored
    statistic probability (`probability_fixed`): iptables-save prints what the kernel keeps."""
    from kplab.netfilter.targets import xmark_of
    from kplab.netfilter.values import probability_fixed

    lines = [f"-A PREROUTING -j {target} {opts}" for target, opts in MARK_FORMS]
    lines += [f"-A PREROUTING -m statistic --mode random --probability {p} -j ACCEPT" for p in PROBABILITIES]
    ns = lab.netns("marks")
    ns.run(
        ["iptables-restore"], input="*mangle\n:PREROUTING ACCEPT [0:0]\n" + "\n".join(lines) + "\nCOMMIT\n"
    )
    saved = parse(ns.run(["iptables-save", "-t", "mangle"]).stdout, "saved")
    rules = saved.tables["mangle"].chains["PREROUTING"].rules
    assert len(rules) == len(lines)
    for (target, opts), rule in zip(MARK_FORMS, rules[: len(MARK_FORMS)], strict=True):
        words = opts.split()
        mine = xmark_of({words[0]: tuple(words[1:])})
        assert rule.target is not None and mine is not None
        value, mask = (int(x, 16) for x in rule.target.options[0].value.split("/"))
        assert rule.target.options[0].name == "--set-xmark" and (value, mask) == mine, (target, opts)
    for text, rule in zip(PROBABILITIES, rules[len(MARK_FORMS) :], strict=True):
        stored = rule.match("statistic").get("--probability").value  # type: ignore[union-attr]
        assert stored == f"{probability_fixed(text) / 0x80000000:.11f}", text
