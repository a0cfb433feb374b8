"""Every input parser, fed garbage: a result or InputError, never another exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.diagnose import capture, ctstats, kpconfig, nft, rules, sysctl
from kplab.diagnose.kernel import parse_release
from kplab.errors import InputError

from .helpers import DATA

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def survives(parse: Callable[[], object]) -> None:
    try:
        parse()
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)


def mutated_text(seed_file: str) -> st.SearchStrategy[str]:
    """Real inputs with a slice replaced by random text (most garbage is near-valid)."""
    base = (DATA / seed_file).read_text()
    return st.tuples(st.integers(0, len(base)), st.integers(0, 40), st.text(max_size=40)).map(
        lambda t: base[: t[0]] + t[2] + base[t[0] + t[1] :]
    )


def mutated_bytes(data: bytes) -> st.SearchStrategy[bytes]:
    return st.tuples(st.integers(0, len(data)), st.integers(0, 16), st.binary(max_size=16)).map(
        lambda t: data[: t[0]] + t[2] + data[t[0] + t[1] :]
    )


@FUZZ
@given(st.one_of(st.text(max_size=300), mutated_text("kp-1.15.save")))
def test_iptables_save(text: str) -> None:
    survives(lambda: rules.analyse(text, "f"))


@FUZZ
@given(st.one_of(st.text(max_size=300), mutated_text("nft-kube-proxy-drop.json")))
def test_nft(text: str) -> None:
    survives(lambda: nft.analyse(text, "f"))


@FUZZ
@given(
    st.one_of(
        st.text(max_size=300), mutated_text("conntrack-S-after.txt"), mutated_text("proc-stat-after.txt")
    )
)
def test_conntrack_stats(text: str) -> None:
    survives(lambda: ctstats.parse(text, "f"))


@FUZZ
@given(st.one_of(st.text(max_size=300), mutated_text("kube-proxy.yaml")))
def test_kube_proxy_config(text: str) -> None:
    survives(lambda: kpconfig.parse(text, "f"))


@FUZZ
@given(st.text(max_size=300))
def test_sysctl_and_uname(text: str) -> None:
    survives(lambda: sysctl.parse(text, "f").integer(sysctl.BE_LIBERAL))
    survives(lambda: parse_release(text))


PCAPNG = (DATA / "emu-control-node-a.pcapng").read_bytes()[:3000]


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200), mutated_bytes(PCAPNG), st.binary(max_size=64).map(lambda b: PCAPNG[:64] + b)
    )
)
def test_capture(data: bytes) -> None:
    survives(lambda: capture.read(data, "f"))


def test_truncated_real_capture_is_bad_input(tmp_path: Path) -> None:
    data = (DATA / "emu-control-node-a.pcapng").read_bytes()
    try:
        capture.read(data[: len(data) - 7], "cut.pcapng")
    except InputError as exc:
        assert str(exc).startswith("cut.pcapng: malformed capture")
    else:
        raise AssertionError("a truncated capture must be bad input")
