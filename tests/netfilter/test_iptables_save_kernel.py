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
