"""Hostile scenarios: every impossible or dangerous value is refused at load time, with file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.errors import InputError
from kplab.scenario.load import builtin_text, parse

SEED = builtin_text()
BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
        "name: *i",
    ]
)


def refused(text: str) -> str:
    with pytest.raises(InputError) as info:
        parse(text, "s.yaml")
    message = str(info.value)
    assert message.startswith("s.yaml:") and "\n" not in message and len(message) < 400, message
    return message


def replaced(old: str, new: str) -> str:
    assert old in SEED, old
    return SEED.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # names become file paths (DIR/<node>.pcapng) and keys
        ("{name: node-a,", "{name: ../../x,", "not a DNS-1123 subdomain"),
        ("{name: node-a,", "{name: /etc/x,", "not a DNS-1123 subdomain"),
        ("{name: node-a,", "{name: Node_A,", "not a DNS-1123 subdomain"),
        ("{name: client-1,", "{name: " + "a" * 254 + ",", "longer than 253"),
        ("name: server, cluster_ip", "name: 1server, cluster_ip", "not a DNS-1035 label"),
        ("namespace: default, name: server", "namespace: a.b, name: server", "not a DNS-1123 label"),
        ("labels: {role: client}}", "labels: {role: 'a b'}}", "label value"),
        # duplicates are silently merged today
        ("name: client-2,", "name: client-1,", "pod or external host name client-1 appears twice"),
        ("name: node-b,", "name: node-a,", "node name node-a appears twice"),
        ("ip: 10.0.0.3,", "ip: 10.0.0.2,", "address 10.0.0.2 appears twice"),
        # ports as Kubernetes allows them
        ("target_port: 80", "target_port: 0", "expected an integer in 1..65535"),
        ("target_port: 80", "target_port: 70000", "expected an integer in 1..65535"),
        ("port: 80,", "port: -1,", "expected an integer in 1..65535"),
        # zero, negative, infinite, NaN and huge quantities
        ("rate: 100Mbit", "rate: 0", "a link needs a rate above 0"),
        ("rate: 100Mbit", "rate: .inf", "finite rate"),
        ("rate: 100Mbit", "rate: -5", "non-negative"),
        ("delay: 100us", "delay: -1ms", "expected a duration"),
        ("delay: 100us", "delay: .nan", "finite duration"),
        ("delay: 100us", "delay: 1.0e+100", "larger than kplab takes"),
        ("queue: 100", "queue: 0", "in 1..1000000"),
        ("duration: 30s", "duration: 0s", "a scenario needs a duration above 0"),
        ("duration: 30s", "duration: -3", "non-negative"),
        ("file_size: 2MB", "file_size: 0", "at least 1 byte"),
        ("file_size: 2MB", "file_size: .inf", "finite size"),
        ("parallel: 2", "parallel: 0", "in 1..1000000000"),
        ("parallel: 2", "parallel: -4", "in 1..1000000000"),
        ("downloads: 2", "downloads: 0", "in 1..1000000000"),
        ("start_spread: 100ms", "start_spread: -1s", "expected a duration"),
        ("slow_share: 0.0003", "slow_share: .nan", "probability"),
        ("seed: 1", "seed: " + "9" * 5000, "more than 4300 digits"),
        # what cannot finish: refused with the limit and how to raise it
        ("parallel: 2", "parallel: 1000000000", "raise `limits: {connections: ...}`"),
        ("downloads: 2", "downloads: 1000000", "raise `limits: {connections: ...}`"),
        ("file_size: 2MB", "file_size: 10000GB", "raise `limits: {transfer: ...}`"),
        ("duration: 30s", "duration: 100000s", "raise `limits: {duration: ...}`"),
        # sysctls within what the kernel accepts (checked by writing them in a namespace)
        ("nf_conntrack_tcp_loose: 1", "nf_conntrack_tcp_loose: 2", "outside what the kernel accepts, 0..1"),
        ("nf_conntrack_tcp_loose: 1", "nf_conntrack_tcp_timeout_established: -1", "0..2147483"),
        ("nf_conntrack_tcp_loose: 1", "nf_conntrack_tcp_max_retrans: 256", "0..255"),
        ("nf_conntrack_tcp_loose: 1", "nf_conntrack_max: -1", "0..2147483647"),
    ],
)
def test_refused_with_file_and_line(old: str, new: str, expected: str) -> None:
    message = refused(replaced(old, new))
    assert expected in message, message
    line = int(message.split(":")[1])
    assert 1 <= line <= len(SEED.splitlines()) + 1


def test_limits_can_be_raised() -> None:
    text = replaced("parallel: 2", "parallel: 200000") + "limits: {connections: 2000000, transfer: 5TB}\n"
    assert parse(text, "s.yaml").workload.parallel == 200000


def test_many_pods_are_refused_by_the_hosts_limit() -> None:
    pods = "".join(
        f"  - {{name: p{i}, node: node-a, ip: 10.0.{2 + i // 250}.{i % 250 + 1}}}\n" for i in range(1001)
    )
    text = replaced("pods:\n", "pods:\n" + pods)
    assert "raise `limits: {hosts: ...}`" in refused(text)


def test_alias_bomb_is_refused_quickly_and_quoted_briefly() -> None:
    assert len(BOMB) < 800
    assert "aliases expand to more than" in refused(BOMB)


def test_shared_values_within_budget_still_load() -> None:
    text = replaced("labels: {role: client}}", "labels: &c {role: client}}").replace(
        "client_selector: {role: client}", "client_selector: *c"
    )
    assert parse(text, "s.yaml").workload.client_selector == {"role": "client"}


@pytest.mark.parametrize("text", ["[" * 100_000, "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 3000))])
def test_deep_nesting_is_refused(text: str) -> None:
    message = refused(text)
    assert "nested deeper than" in message or "exceeded maximum nesting depth" in message, message


def test_values_in_messages_are_short() -> None:
    message = refused(replaced("parallel: 2", "parallel: [" + ", ".join(["xxxxxxxx"] * 10_000) + "]"))
    assert "..." in message


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from kplab.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kplab: "), proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    "command",
    [["run"], ["repro", "-f"], ["repro", "--show-scenario", "-f"], ["ct", "replay"], ["lab", "repro", "-f"]],
)
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text"),
        (b"name: x\x00\n", "a NUL byte"),
        (None, "is a directory"),
        (b"", "cannot read"),  # unreadable (mode 000 is no obstacle to root: a dangling symlink is)
    ],
)
def test_unreadable_files_are_one_line(
    tmp_path: Path, command: list[str], content: bytes | None, expected: str
) -> None:
    path = tmp_path / "input"
    if content is None:
        path.mkdir()
    elif content == b"":
        path.symlink_to(tmp_path / "missing")
    else:
        path.write_bytes(content)
    assert expected in one_line_exit_2(run_cli(*command, str(path)))


def test_pcap_dir_never_receives_a_path_from_input(tmp_path: Path) -> None:
    """Before: a node named ../../x made `kplab run --pcap DIR` write DIR/../../x.pcapng."""
    text = replaced("{name: node-a,", "{name: ../../escaped,").replace("node: node-a", "node: ../../escaped")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    out = tmp_path / "a" / "b"
    assert "DNS-1123" in one_line_exit_2(run_cli("run", str(scenario), "--pcap", str(out)))
    assert not list(tmp_path.rglob("*.pcapng"))


def test_path_inside_refuses_escapes(tmp_path: Path) -> None:
    from kplab.untrusted import path_inside

    (tmp_path / "link.pcapng").symlink_to("/tmp/elsewhere.pcapng")
    for name in ("../x.pcapng", "/x.pcapng", ".hidden", "", "link.pcapng"):
        with pytest.raises(InputError):
            path_inside(tmp_path, name)
    assert path_inside(tmp_path, "node-a.pcapng") == tmp_path / "node-a.pcapng"


def test_interrupt_during_start_up_is_one_line_exit_130(tmp_path: Path) -> None:
    """SIGINT while the commands are being imported (before click runs): one line, exit 130."""
    code = (
        "import builtins, os, signal, sys\n"
        "real = builtins.__import__\n"
        "def hook(name, *args, **kwargs):\n"
        "    if name == 'kplab.cli.app':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = hook\n"
        "sys.argv = ['kplab', 'repro']\n"
        "from kplab.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and proc.stderr == "kplab: interrupted\n", proc.stderr


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE = st.sampled_from(
    [
        "0",
        "-1",
        ".inf",
        "-.inf",
        ".nan",
        "1e308",
        "9" * 400,
        "''",
        "[]",
        "{}",
        "null",
        "true",
        "'false'",
        "../../x",
        "/abs",
        "*a",
        "&a [*a]",
        "[" * 200,
        "'\x00'",
        "0x7fffffff",
        "70000",
        "1000000000",
        "10000GB",
        "1Gbit",
        "-5ms",
        "a" * 300,
    ]
)


@FUZZ
@given(st.integers(0, len(SEED.splitlines()) - 1), HOSTILE, st.booleans())
def test_fuzz_scenario_loader(index: int, value: str, whole_line: bool) -> None:
    """Every scenario value replaced by a hostile one: loads, or one located line."""
    lines = SEED.splitlines()
    line = lines[index]
    key, colon, _ = line.partition(":")
    lines[index] = value if whole_line or not colon else f"{key}: {value}"
    try:
        parse("\n".join(lines), "s.yaml")
    except InputError as exc:
        message = str(exc)
        assert message.startswith("s.yaml:") and "\n" not in message and len(message) < 400, message


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_scenario_bytes(data: bytes) -> None:
    from kplab.untrusted import decode

    try:
        parse(decode(data, "s.yaml"), "s.yaml")
    except InputError as exc:
        assert str(exc).startswith("s.yaml:") and "\n" not in str(exc)
