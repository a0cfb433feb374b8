"""The established fast path (tcp_fast) must be invisible: same outputs and same TCP state."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kplab.netfilter.conntrack.profiles import PROFILES, Sysctls
from kplab.netfilter.conntrack.replay import ISN_ORIG, ISN_REPLY, Node, parse_line, replay

OPTS = {"mss": 1460, "wscale": 7, "sackok": True}
HANDSHAKE: list[dict[str, Any]] = [
    {"dir": "orig", "flags": "S", "seq": 0, "win": 64240, "opts": OPTS},
    {"dir": "reply", "flags": "SA", "seq": 0, "ack": 1, "win": 65160, "opts": OPTS},
    {"dir": "orig", "flags": "A", "seq": 1, "ack": 1, "win": 502},
]
near = st.one_of(st.integers(0, 140_000), st.sampled_from([64256, 64257, 65161, 66000, 2**31, 2**32 - 1]))
segment = st.fixed_dictionaries(
    {
        "dir": st.sampled_from(["orig", "reply"]),
        "flags": st.sampled_from(["A", "PA", "A", "PA", "FA", "R", "S", "AU", "EA"]),
        "seq": near,
        "ack": near,
        "win": st.sampled_from([0, 1, 502, 509, 65535]),
        "len": st.sampled_from([0, 1, 100, 1400, 30000]),
    },
    optional={"sack": st.lists(st.tuples(near, near).map(list), max_size=2)},
)


@settings(max_examples=300, deadline=None)
@given(
    tail=st.lists(segment, max_size=12),
    profile=st.sampled_from(sorted(PROFILES)),
    liberal=st.booleans(),
    advance=st.sampled_from([0, 1, 400]),
)
def test_fast_path_changes_nothing(
    tail: list[dict[str, Any]], profile: str, liberal: bool, advance: int
) -> None:
    lines = [*HANDSHAKE, *tail]
    steps = [parse_line(obj, f"gen|{i}") for i, obj in enumerate(lines)]
    runs = []
    for fast in (True, False):
        sysctls = Sysctls(nf_conntrack_tcp_be_liberal=int(liberal))
        node = Node(PROFILES[profile], sysctls)
        node.ct.fast_path = fast
        out = []
        for step in steps:
            out.extend(replay([step], node, ISN_ORIG, ISN_REPLY)[:1])
            node.now_ns += advance * 1_000_000_000
        runs.append((out, [(e.status, e.timeout_ns, e.tcp_fields()) for e in node.ct.entries()]))
    assert runs[0] == runs[1]
