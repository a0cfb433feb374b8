"""Hostile input to every loader but the scenario's (tests/scenario/test_hostile.py): one line
`kplab: ...` and exit 2, or success; never a traceback, a hang or a silently accepted value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab_cli import run_main as kplab

DATA = Path(__file__).resolve().parent / "data"
DOCTOR = DATA / "doctor"
MANIFESTS = DATA / "kube-proxy-own" / "legacy" / "services.yaml"
DUMP = DOCTOR / "kp-1.15.save"
PROBE = ["-p", "tcp", "--src", "10.0.0.2", "--dst", "10.96.0.1:80"]
BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
        "kind: *i",
    ]
)
DEEP_JSON = "[" * 50_000 + "]" * 50_000
DEEP_YAML = "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 2000))
HOSTILE_FILES = {
    "binary": b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe\x00",
    "nul": b"kind: Service\x00\n",
    "bomb": BOMB.encode(),
    "deep-json": DEEP_JSON.encode(),
    "deep-yaml": DEEP_YAML.encode(),
    "nan": b'{"nftables": [NaN]}\n',
    "long-int": b"kind: " + b"9" * 5000 + b"\n",
}


def one_line_exit_2(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("kplab: ") and len(err) < 520, err
    return err


COMMANDS = {
    "rules -f": lambda f: ["rules", "-f", f],
    "rules --config": lambda f: ["rules", "-f", str(MANIFESTS), "--config", f],
    "rules --env": lambda f: ["rules", "-f", str(MANIFESTS), "--env", f],
    "ct replay": lambda f: ["ct", "replay", f],
    "trace --rules": lambda f: [
        "trace",
        "--rules",
        f,
        "-p",
        "tcp",
        "--src",
        "10.0.0.2",
        "--dst",
        "10.96.0.1:80",
    ],
    "trace --nft": lambda f: ["trace", "--nft", f, "-p", "tcp", "--src", "10.0.0.2", "--dst", "10.96.0.1:80"],
    "trace --ip-addr": lambda f: ["trace", "--rules", str(DUMP), "--ip-addr", f, *PROBE],
    "trace --ip-route": lambda f: ["trace", "--rules", str(DUMP), "--ip-route", f, *PROBE],
    "trace --ipset-save": lambda f: ["trace", "--rules", str(DUMP), "--ipset-save", f, *PROBE],
    "doctor --nft": lambda f: ["doctor", "--nft", f],
    "doctor --kube-proxy-config": lambda f: ["doctor", "--kube-proxy-config", f],
    "doctor --iptables-save": lambda f: ["doctor", "--iptables-save", f],
    "doctor --sysctl": lambda f: ["doctor", "--sysctl", f],
    "doctor --conntrack-stats": lambda f: ["doctor", "--conntrack-stats", f],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(HOSTILE_FILES))
def test_hostile_files_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, kind: str
) -> None:
    path = tmp_path / "input"
    path.write_bytes(HOSTILE_FILES[kind])
    one_line_exit_2(kplab(capsys, *COMMANDS[command](str(path))))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_directory_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str) -> None:
    assert "is a directory" in one_line_exit_2(kplab(capsys, *COMMANDS[command](str(tmp_path))))


def replay(capsys: pytest.CaptureFixture[str], tmp_path: Path, *lines: str) -> tuple[int, str, str]:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return kplab(capsys, "ct", "replay", str(path), "--kernel", "6.1")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"dir": "orig", "flags": "S", "opts": {"sackok": "false"}}', "'sackok' must be true or false"),
        ('{"dir": "orig", "flags": "S", "opts": {"sackok": 1}}', "'sackok' must be true or false"),
        ('{"action": "advance", "seconds": Infinity}', "Infinity is not a JSON number"),
        ('{"action": "advance", "seconds": NaN}', "NaN is not a JSON number"),
        ('{"action": "advance", "seconds": 1e300}', "advance needs 'seconds' in 0..10000000"),
        ('{"action": "advance", "seconds": -1}', "advance needs 'seconds'"),
        ('{"dir": "orig", "flags": "A", "sack": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]}', "at most 4"),
        ('{"dir": "orig", "flags": "A", "sack": [[1, 99999999999]]}', "32-bit"),
        ('{"dir": "orig", "seq": ' + "9" * 5000 + "}", "more than 4300 digits"),
    ],
)
def test_replay_refuses(capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, expected: str) -> None:
    err = one_line_exit_2(replay(capsys, tmp_path, line))
    assert "s.jsonl:1:" in err and expected in err, err


def test_replay_strict_false_is_false(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = replay(capsys, tmp_path, '{"dir": "orig", "flags": "S", "opts": {"sackok": false}}')
    assert code == 0 and json.loads(out.splitlines()[0])["ctstate"] == "NEW"


@pytest.mark.parametrize("interval", ["nan", "inf", "-1", "0"])
def test_stats_interval_must_be_finite_and_positive(
    capsys: pytest.CaptureFixture[str], interval: str
) -> None:
    before, after = str(DOCTOR / "conntrack-S-before.txt"), str(DOCTOR / "conntrack-S-after.txt")
    args = ["doctor", "--conntrack-stats", before, "--conntrack-stats", after, "--stats-interval", interval]
    assert "--stats-interval" in one_line_exit_2(kplab(capsys, *args, "-o", "json"))


def test_stats_interval_json_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    before, after = str(DOCTOR / "conntrack-S-before.txt"), str(DOCTOR / "conntrack-S-after.txt")
    code, out, _ = kplab(capsys, "doctor", "--conntrack-stats", before, "--conntrack-stats", after,
                         "--stats-interval", "10", "-o", "json")  # fmt: skip
    assert code == 0
    json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_three_conntrack_samples_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    before, after = str(DOCTOR / "conntrack-S-before.txt"), str(DOCTOR / "conntrack-S-after.txt")
    args = ["doctor", *(x for f in (before, after, after) for x in ("--conntrack-stats", f))]
    assert "not 3" in one_line_exit_2(kplab(capsys, *args))


def test_live_interval_nan_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--live-interval" in one_line_exit_2(kplab(capsys, "doctor", "--live", "--live-interval", "nan"))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("kind: Service\nmetadata: {name: ../x}\nspec: {ports: [{port: 80}]}\n", "not a DNS-1035 label"),
        (
            "kind: Service\nmetadata: {name: a, namespace: A_B}\nspec: {ports: [{port: 80}]}\n",
            "DNS-1123 label",
        ),
        ("kind: Node\nmetadata: {name: /etc/passwd}\n", "not a DNS-1123 subdomain"),
        ("kind: EndpointSlice\nmetadata: {name: 'x y'}\n", "not a DNS-1123 subdomain"),
        ("kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 70000}]}\n", "out of range 1..65535"),
    ],
)
def test_manifest_names_and_ports(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: str, expected: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(doc)
    assert expected in one_line_exit_2(kplab(capsys, "rules", "-f", str(path)))


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FRAGMENTS = st.sampled_from(
    ['"sackok": "false"', '"seconds": Infinity', '"seconds": NaN', '"seconds": 1e999', '"seq": -1',
     "[" * 300, '"flags": "\\u0000"', '"sack": [[0, 1], 2]', '"win": 70000', '"action": "advance"',
     '"dir": "orig"', '"dir": "reply"', '"flags": "SA"', '"len": 1460', '"opts": {"wscale": 300}']
)  # fmt: skip


@FUZZ
@given(st.lists(st.lists(FRAGMENTS, max_size=5).map(lambda f: "{" + ", ".join(f) + "}"), max_size=6))
def test_fuzz_ct_replay_loader(lines: list[str]) -> None:
    from kplab.errors import InputError
    from kplab.netfilter.conntrack.replay import parse_sequence

    try:
        parse_sequence("\n".join(lines), "s.jsonl")
    except InputError as exc:
        assert str(exc).startswith("s.jsonl:") and "\n" not in str(exc)


MANIFEST_TEXT = MANIFESTS.read_text()


@FUZZ
@given(
    st.integers(0, len(MANIFEST_TEXT)),
    st.sampled_from(
        ["&a [*a]", BOMB, "\x00", "[" * 500, "9" * 5000, ".nan", "../../x", ": : :", "*undefined"]
    ),
)
def test_fuzz_manifest_loader(at: int, insert: str) -> None:
    from kplab.errors import InputError
    from kplab.kubeproxy.load import load_manifest_text
    from kplab.untrusted import decode

    text = MANIFEST_TEXT[:at] + insert + MANIFEST_TEXT[at:]
    try:
        load_manifest_text(decode(text.encode(), "m.yaml"), "m.yaml")
    except InputError as exc:
        assert str(exc).startswith("m.yaml:") and "\n" not in str(exc) and len(str(exc)) < 400


HOSTILE_INSERTS = st.sampled_from(
    ["&a [*a]", BOMB, "\x00", "[" * 500, "{" * 500, "9" * 5000, ".nan", "NaN", "Infinity", "1e999",
     "-m bogus", "-j NOWHERE", "--probability 2", "-s 300.0.0.1", "--mark 0x1ffffffff", ": : :"]
)  # fmt: skip


def inserted(path: Path) -> st.SearchStrategy[str]:
    text = path.read_text()
    return st.tuples(st.integers(0, len(text)), HOSTILE_INSERTS).map(
        lambda t: text[: t[0]] + t[1] + text[t[0] :]
    )


def survives(parse: object, text: str) -> None:
    from kplab.errors import InputError
    from kplab.untrusted import decode

    try:
        parse(decode(text.encode(), "f"), "f")  # type: ignore[operator]
    except InputError as exc:
        assert str(exc).startswith("f") and "\n" not in str(exc) and len(str(exc)) <= 500, str(exc)


@FUZZ
@given(inserted(DOCTOR / "kp-1.15.save"))
def test_fuzz_doctor_iptables_save(text: str) -> None:
    from kplab.diagnose import rules

    survives(rules.analyse, text)


@FUZZ
@given(inserted(DOCTOR / "nft-kube-proxy-drop.json"))
def test_fuzz_doctor_nft(text: str) -> None:
    from kplab.diagnose import nft

    survives(nft.analyse, text)


@FUZZ
@given(inserted(DOCTOR / "kube-proxy.yaml"))
def test_fuzz_doctor_kube_proxy_config(text: str) -> None:
    from kplab.diagnose import kpconfig

    survives(kpconfig.parse, text)


@FUZZ
@given(
    inserted(DATA / "kube-proxy-own" / "legacy" / "kube-proxy.yaml")
    | inserted(DATA / "kube-proxy-own" / "legacy" / "node.yaml")
)
def test_fuzz_rules_config_and_env(text: str) -> None:
    from kplab.kubeproxy.docs import read_documents
    from kplab.kubeproxy.load import env_from, load_manifest_text

    survives(load_manifest_text, text)
    survives(lambda t, f: [env_from(d) for d in read_documents(t, f)], text)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["rules", "-f", str(MANIFESTS), "--sysctl", "a=" + "9" * 5000], "expected KEY=INTEGER"),
        (["ct", "replay", str(DATA / "ct" / "ack_before_synack.jsonl"), "--sysctl",
          "nf_conntrack_tcp_loose=2"],
         "outside what the kernel accepts, 0..1"),
        (["ct", "replay", str(DATA / "ct" / "ack_before_synack.jsonl"), "--sysctl",
          "nf_conntrack_tcp_timeout_established=-5"], "0..2147483"),
    ],
)  # fmt: skip
def test_sysctl_options_are_checked(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert expected in one_line_exit_2(kplab(capsys, *args))


@FUZZ
@given(inserted(DOCTOR / "nft-kube-proxy.nft") | inserted(DOCTOR / "nft-kube-proxy-drop.json"))
def test_fuzz_trace_nft(text: str) -> None:
    from kplab.netfilter.nft.compile import compile_nft
    from kplab.netfilter.nft.load import parse_nft

    survives(lambda t, f: compile_nft(parse_nft(t, f)), text)


@FUZZ
@given(inserted(DOCTOR / "sysctl-default.txt") | inserted(DOCTOR / "conntrack-S-after.txt"))
def test_fuzz_doctor_sysctl_and_conntrack_stats(text: str) -> None:
    from kplab.diagnose import ctstats, sysctl

    survives(lambda t, f: sysctl.parse(t, f).integer(sysctl.BE_LIBERAL), text)
    survives(ctstats.parse, text)


NODES = DATA / "nodes"


@FUZZ
@given(inserted(NODES / "weave.ipset") | inserted(NODES / "ipvs.ipset"))
def test_fuzz_ipset_save(text: str) -> None:
    from kplab.netfilter import ipset

    survives(ipset.parse, text)


@FUZZ
@given(
    inserted(NODES / "kubeadm-flannel.ip-addr.json")
    | inserted(NODES / "weave.ip-addr.txt")
    | inserted(NODES / "kubeadm-flannel.ip-route.json")
    | inserted(NODES / "weave.ip-route.txt")
)
def test_fuzz_ip_addr_and_route(text: str) -> None:
    from kplab.netfilter import iproute

    survives(iproute.parse_addr, text)
    survives(iproute.parse_route, text)
