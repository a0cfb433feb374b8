"""Dumps that `iptables-restore` refuses are bad input for the doctor and for trace, never "healthy".

The kernel test loads each dump with the real iptables-restore in a throw-away namespace: it must
refuse every one kplab refuses, and load the healthy one kplab accepts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kplab.diagnose.rules import analyse
from kplab.errors import InputError
from kplab.lab.netns import Lab
from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.iptables_save import parse

HEAD = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n"
HEALTHY = "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n-A OUTPUT -m owner --uid-owner 0 -j A\n"


def chain_of(depth: int) -> str:
    names = "".join(f":C{i} - [0:0]\n" for i in range(1, depth + 1))
    jumps = "".join(f"-A C{i} -j C{i + 1}\n" for i in range(1, depth))
    return names + "-A FORWARD -j C1\n" + jumps + f"-A C{depth} -j ACCEPT\n"


REFUSED = {
    "source 300.x": ("-A FORWARD -s 300.1.2.3/32 -j DROP\n", "bad address"),
    "probability 2": ("-A FORWARD -m statistic --mode random --probability 2 -j A\n", "bad probability"),
    "jump loop": ("-A FORWARD -j A\n-A A -j B\n-A B -j A\n", "loop"),
    "mark over 32 bits": ("-A FORWARD -m mark --mark 0x1ffffffff -j DROP\n", "bad mark"),
    "unknown match": ("-A FORWARD -m bogus --foo 1 -j DROP\n", "iptables has no match 'bogus'"),
    "unknown target": ("-A FORWARD -j NOSUCHCHAIN\n", "no chain or target 'NOSUCHCHAIN'"),
    "16 nested chains": (chain_of(16), "16 jumps deep"),
}


def dump(body: str) -> str:
    return HEAD + HEALTHY + body + "COMMIT\n"


@pytest.mark.parametrize("case", list(REFUSED))
def test_doctor_refuses_what_iptables_restore_refuses(case: str) -> None:
    body, expected = REFUSED[case]
    with pytest.raises(InputError) as info:
        analyse(dump(body), "dump")
    assert str(info.value).startswith("dump:") and expected in str(info.value), str(info.value)


def test_doctor_accepts_the_healthy_dump_and_15_nested_chains() -> None:
    facts = analyse(dump(chain_of(15)), "dump")
    assert facts.full_drop is not None


def test_trace_refuses_a_3000_deep_jump_chain_in_one_line() -> None:
    """Before: RecursionError. nf_tables refuses the 16th nested chain: so does kplab."""
    with pytest.raises(InputError, match="16 jumps deep"):
        compile_ruleset(parse(dump(chain_of(3000)), "dump"))


@pytest.mark.kernel
def test_the_real_iptables_restore_agrees(lab: Lab, tmp_path: Path) -> None:
    ns = lab.netns("restore")
    assert ns.run(["iptables-restore"], input=dump(chain_of(15)), check=False).returncode == 0
    for case, (body, _) in REFUSED.items():
        proc = ns.run(["iptables-restore"], input=dump(body), check=False)
        assert proc.returncode != 0, f"iptables-restore loaded the {case} dump"
