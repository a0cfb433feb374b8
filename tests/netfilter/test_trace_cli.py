"""`kplab trace`: kube-proxy's packet-flow table (trace_static), stateful view, JSON keys, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kplab.cli import cli

from .helpers import DATA

STATIC = DATA / "trace" / "trace_static"
RULES = str(STATIC / "expected.rules")
NODE_IPS = [
    a["address"] for a in yaml.safe_load((STATIC / "node.yaml").read_text())["status"]["addresses"]
    if a["type"] != "Hostname" and ":" not in a["address"]
]  # fmt: skip
CASES = yaml.safe_load((STATIC / "traces.yaml").read_text())


def trace_json(*args: str) -> dict:  # type: ignore[type-arg]
    node_args = [arg for ip in NODE_IPS for arg in ("--node-ip", ip)]
    result = CliRunner().invoke(cli, ["trace", "--rules", RULES, *node_args, "-o", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def _args(case: dict) -> list[str]:  # type: ignore[type-arg]
    return ["-p", case.get("proto", "tcp"), "--src", case["src"], "--dst", f"{case['dst']}:{case['dport']}"]


def test_fixture_has_the_seven_cases() -> None:
    assert len(CASES) == 7 and NODE_IPS == ["192.168.0.2", "192.168.1.2", "192.168.99.11"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_stateless_reproduces_kube_proxy_traces(case: dict) -> None:  # type: ignore[type-arg]
    out = trace_json("--stateless", "--lenient", *_args(case))
    assert set(out) == {"verdict", "reason", "dnat", "snat", "masquerade", "warnings", "outcomes", "path"}
    got = [o["dnat"] or o["verdict"] for o in out["outcomes"]]
    assert got == case["expect"]
    assert out["masquerade"] is case["masquerade"]
    for outcome in out["outcomes"]:
        assert set(outcome) == {"dnat", "verdict", "reason", "masquerade", "probability"}
    if got:
        assert all(set(p) == {"table", "chain", "rule_number", "line", "rule"} for p in out["path"])


def test_stateless_branch_probabilities_sum_to_one() -> None:
    out = trace_json("--stateless", "--lenient", "--src", "10.0.0.2", "--dst", "172.30.0.44:80")
    assert [o["probability"] for o in out["outcomes"]] == [0.5, 0.5]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"]], ids=lambda c: c["name"])
def test_stateful_view_agrees_where_state_does_not_matter(case: dict) -> None:  # type: ignore[type-arg]
    out = trace_json("--lenient", "--all-branches", *_args(case))
    assert abs(sum(o["probability"] for o in out["outcomes"]) - 1.0) < 1e-9
    dnats = [o["dnat"] for o in out["outcomes"] if o["dnat"]]
    verdicts = [o["verdict"] for o in out["outcomes"]]
    expected = case["expect"]
    if expected[0] in ("DROP", "REJECT", "ACCEPT"):
        assert verdicts == expected and out["verdict"] == expected[0]
    else:
        assert dnats == expected and set(verdicts) == {"ACCEPT"}
    assert out["masquerade"] is case["masquerade"]
    assert out["path"][0]["table"] in ("raw", "mangle", "nat")  # starts at the built-in chains


def test_stateful_all_branches_use_the_kernel_probability() -> None:
    rules = DATA / "dumps" / "saved" / "calico.save"
    args = ["--all-branches", "-o", "json", "--unknown", "never-match", "--node-ip", "192.168.0.2"]
    packet = ["--src", "10.1.0.5", "--dst", "8.8.8.8:80", "--in-iface", "eth0", "-p", "udp"]
    out = CliRunner().invoke(cli, ["trace", "--rules", str(rules), *args, *packet])
    assert out.exit_code == 0, out.output
    probs = [o["probability"] for o in json.loads(out.output)["outcomes"]]
    assert probs[0] == pytest.approx(0.25) and sum(probs) == pytest.approx(1.0)


def test_text_output_names_table_chain_rule_and_source_line() -> None:
    result = CliRunner().invoke(
        cli, ["trace", "--rules", RULES, "--lenient", "--src", "10.0.0.2", "--dst", "172.30.0.41:80"]
    )
    lines = result.output.splitlines()
    line = next(line for line in lines if line.startswith("nat:KUBE-SVC-XPGD46QRK7WJZT7O:rule:2  "))
    assert line == (
        "nat:KUBE-SVC-XPGD46QRK7WJZT7O:rule:2  -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "
        f'"ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ  ({RULES}:106)'
    )
    assert "verdict: ACCEPT" in lines and "dnat: 10.180.0.1:80" in lines


def _kplab(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from kplab.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", RULES], f"kplab: {RULES}:11: Bad argument 'health'"),
        (["--rules", "/nonexistent/dump"], "kplab: /nonexistent/dump: cannot read:"),
        (["--rules", RULES, "--lenient", "--dst", "1.2.3.4"], "kplab: --dst: needs IP:PORT, got '1.2.3.4'"),
        (["--rules", RULES, "--lenient", "--node-ip", "nope"], "kplab: --node-ip: not an IPv4 address"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    if "--dst" not in args:
        args = [*args, "--dst", "1.2.3.4:80"]
    result = _kplab("trace", "--src", "10.0.0.1", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_dump_through_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules"
    bad.write_text("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.300 -j DROP\nCOMMIT\n")
    result = _kplab("trace", "--rules", str(bad), "--src", "10.0.0.1", "--dst", "1.2.3.4:80")
    assert result.returncode == 2
    assert result.stderr == f"kplab: {bad}:3: bad address '10.0.0.300'\n"
