"""Fuzzing the node-fact loaders of `kplab trace`: any text gives a result or one-line InputError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.errors import InputError
from kplab.netfilter import iproute, ipset
from kplab.netfilter.iptables_s import parse_dump

from .helpers import DATA

NODES = DATA / "nodes"
SEEDS = {
    "addr": [(NODES / "weave.ip-addr.txt").read_text(), (NODES / "kubeadm-flannel.ip-addr.json").read_text()],
    "route": [
        (NODES / "weave.ip-route.txt").read_text(),
        (NODES / "kubeadm-flannel.ip-route.json").read_text(),
    ],
    "ipset": [(NODES / "ipvs.ipset").read_text(), (NODES / "weave.ipset").read_text()],
    "s": [(NODES / "eks.iptables-S.txt").read_text()],
}
PARSERS: dict[str, Callable[[str, str], Any]] = {
    "addr": iproute.parse_addr,
    "route": iproute.parse_route,
    "ipset": ipset.parse,
    "s": parse_dump,
}


def mutate(text: str, cut: int, insert: str, drop: int) -> str:
    at = cut % (len(text) + 1)
    return text[:at] + insert + text[at + drop :]


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 1),
    cut=st.integers(0, 100000),
    insert=st.text(alphabet=st.sampled_from(list(' \n\t"[]{}:,/-.0123456789abcxyz\x00é!$;')), max_size=30),
    drop=st.integers(0, 40),
)
def test_mutated_inputs_parse_or_fail_in_one_line(
    kind: str, seed: int, cut: int, insert: str, drop: int
) -> None:
    texts = SEEDS[kind]
    text = mutate(texts[seed % len(texts)], cut, insert, drop)
    try:
        PARSERS[kind](text, "f")
    except InputError as exc:
        message = str(exc)
        assert message.startswith("f:") and "\n" not in message and len(message) < 400


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_hostile_shapes(kind: str) -> None:
    for text in ("[" * 50000, "{" * 50000, "\x00" * 10, "", "\n" * 5, "[" + "1," * 10000 + "1]", "é" * 100):
        try:
            PARSERS[kind](text, "f")
        except InputError as exc:
            assert "\n" not in str(exc)
