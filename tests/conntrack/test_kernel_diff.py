"""Differential test: the emulator's `host` profile against this machine's kernel, packet by packet.

Every sequence in tests/data/ct (plus the sysctl/rule variants of options.json) and a batch of
hypothesis-generated sequences run through the real node (three lab namespaces, one setup for
the module) and through `kplab.netfilter.conntrack`; ctstate, verdict, NAT, the flow's entry
(state, ASSURED, timeout) and the invalid counter must agree. A generated disagreement leaves its
shrunk sequence in tests/data/ct/regress-pending.jsonl: fix the emulator, then rename the file
to `regress-<what>.jsonl` so it is replayed from then on.
"""

from __future__ import annotations

import itertools
import json
import platform
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.netfilter.conntrack.profiles import get_profile
from kplab.netfilter.conntrack.replay import ISN_ORIG, ISN_REPLY, parse_line

from .cases import DATA, Case, compare, emulate, load_cases
from .kernlab import KernelNode

pytestmark = pytest.mark.kernel
_ports = itertools.count(42000)
CASES = load_cases()


def _run(node: KernelNode, case: Case) -> list[str]:
    port = next(_ports)
    node.configure(case.sysctl, case.drop_invalid)
    kernel = node.replay(case.steps, ISN_ORIG, ISN_REPLY, port)
    emulator = emulate(case, get_profile("host", platform.release()), port)
    return compare(emulator, kernel, port)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sequence_matches_kernel(kernel_node: KernelNode, case: Case) -> None:
    assert _run(kernel_node, case) == []


OPTS = {"mss": 1460, "wscale": 7, "sackok": True}
HANDSHAKE: list[dict[str, Any]] = [
    {"dir": "orig", "flags": "S", "seq": 0, "ack": 0, "win": 64240, "len": 0, "opts": OPTS},
    {"dir": "reply", "flags": "SA", "seq": 0, "ack": 1, "win": 65160, "len": 0, "opts": OPTS},
    {"dir": "orig", "flags": "A", "seq": 1, "ack": 1, "win": 502, "len": 0},
]
PLAIN_HANDSHAKE: list[dict[str, Any]] = [  # no window scaling, no SACK: windows of ~29 kB
    {"dir": "orig", "flags": "S", "seq": 0, "ack": 0, "win": 29200, "len": 0, "opts": {"mss": 1460}},
    {"dir": "reply", "flags": "SA", "seq": 0, "ack": 1, "win": 28960, "len": 0, "opts": {"mss": 1460}},
    {"dir": "orig", "flags": "A", "seq": 1, "ack": 1, "win": 29200, "len": 0},
]
# Values near the bounds the handshake sets up (right edges ~64257/65161, MAXACKWINDOW 66000).
_NEAR = [0, 1, 2, 100, 101, 1000, 64256, 64257, 64258, 65160, 65161, 65162, 66000, 130000, 2**31, 2**32 - 1]
numbers = st.one_of(st.sampled_from(_NEAR), st.integers(0, 140000), st.integers(0, 2**32 - 1))
segments = st.fixed_dictionaries(
    {
        "dir": st.sampled_from(["orig", "reply"]),
        "flags": st.sampled_from(["A", "PA", "PA", "A", "FA", "R", "RA", "S", "SA"]),
        "seq": numbers,
        "ack": numbers,
        "win": st.sampled_from([0, 1, 229, 502, 509, 29200, 65535]),
        "len": st.sampled_from([0, 0, 1, 100, 1400, 30000]),
    },
    optional={"sack": st.lists(st.tuples(numbers, numbers).map(list), min_size=1, max_size=3)},
)
steps = st.lists(
    st.one_of(segments, segments, segments, st.just({"action": "ct-delete"})), min_size=1, max_size=8
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=steps, liberal=st.booleans(), loose=st.booleans(), scaled=st.booleans())
def test_generated_sequences_match_kernel(
    kernel_node: KernelNode, tail: list[dict[str, Any]], liberal: bool, loose: bool, scaled: bool
) -> None:
    lines = (HANDSHAKE if scaled else PLAIN_HANDSHAKE) + tail
    sysctl = {"nf_conntrack_tcp_be_liberal": int(liberal), "nf_conntrack_tcp_loose": int(loose)}
    case = Case("generated", [parse_line(obj, f"generated|{i + 1}") for i, obj in enumerate(lines)], sysctl)
    problems = _run(kernel_node, case)
    if problems:
        pending = DATA / "regress-pending.jsonl"
        pending.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
        Path(DATA / "regress-pending.sysctl.json").write_text(json.dumps(sysctl) + "\n")
    assert problems == []


@st.composite
def plausible_flows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A mostly well-behaved flow (data, ACKs, FINs) with perturbations near the window edges:
    old retransmissions, delayed or early ACKs, overshoots, exact/inexact RSTs, keepalives."""
    nxt = {"orig": 1, "reply": 1}  # next relative seq each side sends
    acked = {"orig": 1, "reply": 1}  # highest relative ack each side has sent
    win = {"orig": 502, "reply": 509}
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 14))):
        side = draw(st.sampled_from(["orig", "reply"]))
        peer = "reply" if side == "orig" else "orig"
        kind = draw(st.sampled_from(["data", "data", "ack", "ack", "old", "over", "fin", "rst", "keepalive"]))
        length = draw(st.sampled_from([1, 100, 1400, 20000, 60000]))
        ack = draw(st.sampled_from([nxt[peer], nxt[peer], acked[side], nxt[peer] - 1, nxt[peer] + 1, 1]))
        seg: dict[str, Any] = {
            "dir": side,
            "flags": "A",
            "seq": nxt[side],
            "ack": ack % 2**32,
            "win": win[side],
        }
        if kind == "data":
            seg |= {"flags": "PA", "len": length}
            nxt[side] += length
        elif kind == "old":
            seg |= {
                "flags": "PA",
                "seq": max(1, nxt[side] - draw(st.sampled_from([1, 1400, 70000]))),
                "len": 100,
            }
        elif kind == "over":
            seg |= {
                "flags": "PA",
                "seq": nxt[side] + draw(st.sampled_from([1, 64000, 65000, 70000, 2**20])),
                "len": 100,
            }
        elif kind == "fin":
            seg["flags"] = "FA"
            nxt[side] += 1
        elif kind == "rst":
            seg = {
                "dir": side,
                "flags": draw(st.sampled_from(["R", "RA"])),
                "seq": nxt[side] + draw(st.sampled_from([0, 0, 1, -1, 10, 2**20])),
                "ack": seg["ack"],
                "win": 0,
            }
        elif kind == "keepalive":
            seg |= {"seq": nxt[side] - 1, "len": draw(st.sampled_from([0, 1]))}
        seg["seq"] %= 2**32
        acked[side] = max(acked[side], ack)
        out.append(seg)
        if draw(st.integers(0, 19)) == 0:
            out.append({"action": "ct-delete"})
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tail=plausible_flows(), liberal=st.booleans(), loose=st.booleans())
def test_plausible_flows_match_kernel(
    kernel_node: KernelNode, tail: list[dict[str, Any]], liberal: bool, loose: bool
) -> None:
    lines = [*HANDSHAKE, *tail]
    sysctl = {"nf_conntrack_tcp_be_liberal": int(liberal), "nf_conntrack_tcp_loose": int(loose)}
    case = Case("plausible", [parse_line(obj, f"plausible|{i + 1}") for i, obj in enumerate(lines)], sysctl)
    problems = _run(kernel_node, case)
    if problems:
        (DATA / "regress-pending.jsonl").write_text("".join(json.dumps(obj) + "\n" for obj in lines))
        (DATA / "regress-pending.sysctl.json").write_text(json.dumps(sysctl) + "\n")
    assert problems == []
