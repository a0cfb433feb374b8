"""`kplab trace --nft`: text or JSON detected, the same JSON keys as `--rules`, IPv6, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kplab.cli import cli

from .helpers import NODE_IPS, OVERALL

NODE_ARGS = [arg for ip in NODE_IPS for arg in ("--node-ip", ip)]


def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from kplab.cli import main; sys.argv = ['kplab', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)


def trace_json(path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, ["trace", "--nft", str(path), *NODE_ARGS, "-o", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


@pytest.mark.parametrize("form", sorted(OVERALL))
def test_json_keys_and_branches(form: str) -> None:
    out = trace_json(OVERALL[form], "--src", "10.180.0.2", "--dst", "172.30.0.44:80", "--all-branches")
    assert set(out) == {"verdict", "reason", "dnat", "snat", "masquerade", "warnings", "outcomes", "path"}
    assert out["verdict"] == "ACCEPT" and out["dnat"] == "10.180.0.4:80" and out["masquerade"] is False
    assert out["reason"].startswith("accepted: ")
    assert [(o["dnat"], o["probability"]) for o in out["outcomes"]] == [
        ("10.180.0.4:80", 0.5),
        ("10.180.0.5:80", 0.5),
    ]
    assert set(out["outcomes"][0]) == {"dnat", "verdict", "reason", "masquerade", "probability"}
    entry = out["path"][0]
    assert set(entry) == {"table", "chain", "rule_number", "line", "rule"}
    assert (entry["table"], entry["chain"], entry["rule"]) == (
        "ip kube-proxy",
        "filter-prerouting-pre-dnat",
        "ct state new jump firewall-check",
    )


def test_stateless_matches_upstreams_tracer_view() -> None:
    out = trace_json(OVERALL["json"], "--src", "203.0.113.5", "--dst", "192.168.0.2:3003", "--stateless")
    assert [o["dnat"] or o["verdict"] for o in out["outcomes"]] == ["10.180.0.3:80"]
    assert out["masquerade"] is True


def test_text_output_and_seeded_draws() -> None:
    args = ["trace", "--nft", str(OVERALL["list"]), "--src", "10.180.0.2", "--dst", "172.30.0.44:80"]
    one = CliRunner().invoke(cli, [*args, "--seed", "5"])
    again = CliRunner().invoke(cli, [*args, "--seed", "5"])
    assert one.exit_code == 0 and one.output == again.output
    assert "verdict: ACCEPT" in one.output and "ip kube-proxy:services:rule:1" in one.output


def test_ipv6_probe(tmp_path: Path) -> None:
    dump = tmp_path / "v6.nft"
    dump.write_text(
        "table ip6 t {\n chain nat-prerouting {\n  type nat hook prerouting priority dstnat; policy accept;\n"
        "  ip6 daddr fd00:10:96::1 tcp dport 80 dnat to [fd00:10:180::1]:8080\n }\n}\n"
    )
    result = CliRunner().invoke(
        cli, ["trace", "--nft", str(dump), "--src", "fd00:10::2", "--dst", "[fd00:10:96::1]:80", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dnat"] == "[fd00:10:180::1]:8080"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (
            "add table ip t\nadd chain ip t c\nadd rule ip t c ip daddr 1.2.3.999 drop\n",
            [],
            "{f}:3: not an IPv4 address: '1.2.3.999'",
        ),
        (
            '{"nftables": [{"chain": {"family": "ip", "table": "t", "name": "c"}}]}',
            [],
            "{f}: nftables[0].chain.table: no table 'ip t' declared before",
        ),
        (
            "add table ip t\n",
            ["--src", "10.0.0.1", "--dst", "[fd00::1]:80"],
            "--src 10.0.0.1 and --dst [fd00::1]:80: not the same IP family",
        ),
        (
            "add table ip t\n",
            ["--src", "10.0.0.1", "--dst", "10.0.0.2"],
            "--dst: needs IP:PORT (or [IPv6]:PORT), got '10.0.0.2'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, content: str, args: list[str], message: str) -> None:
    dump = tmp_path / "d.nft"
    dump.write_text(content)
    probe = args or ["--src", "10.0.0.1", "--dst", "10.0.0.2:80"]
    proc = run_cli(["trace", "--nft", str(dump), *probe])
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"kplab: {message.format(f=dump)}"]


def test_iptables_only_options_are_refused_and_assumptions_said(tmp_path: Path) -> None:
    proc = run_cli(
        ["trace", "--nft", str(OVERALL["nft"]), "--lenient", "--src", "10.0.0.1", "--dst", "10.0.0.2:80"]
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == "kplab: trace: --ipset-save and --lenient are for iptables dumps (--rules), not --nft\n"
    )
    args = [
        "trace",
        "--nft",
        str(OVERALL["nft"]),
        "-o",
        "json",
        "--src",
        "203.0.113.9",
        "--dst",
        "172.30.0.41:80",
    ]
    result = CliRunner().invoke(cli, args)
    out = json.loads(result.output)
    assert out["dnat"] == "10.180.0.1:80" and out["masquerade"] is True
    assert any("no node address given" in w for w in out["warnings"])


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        ["trace", "--nft", str(tmp_path / "none.nft"), "--src", "10.0.0.1", "--dst", "10.0.0.2:80"]
    )
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"kplab: {tmp_path / 'none.nft'}: cannot read")


def test_node_interfaces_say_where_a_packet_arrives_and_which_sources_are_local() -> None:
    """Same node model as `--rules`: with `--ip-addr`/`--ip-route` a forwarded probe arrives on the
    default route's interface (and says so), and a source that is any of the node's addresses is
    locally generated (OUTPUT), not only a `--node-ip`."""
    node = Path(__file__).parent.parent / "data" / "nodes"
    described = ["--ip-addr", str(node / "weave.ip-addr.txt"), "--ip-route", str(node / "weave.ip-route.txt")]
    base = ["trace", "--nft", str(OVERALL["nft"]), "-o", "json", *described, "--dst", "172.30.0.41:80"]
    forwarded = json.loads(CliRunner().invoke(cli, [*base, "--src", "203.0.113.9"]).output)
    assert any("arrive on ens5" in w for w in forwarded["warnings"])
    assert forwarded["path"][0]["chain"] == "filter-prerouting-pre-dnat"
    local = json.loads(CliRunner().invoke(cli, [*base, "--src", "10.40.0.0"]).output)
    assert not any("arrive on" in w for w in local["warnings"])
    assert local["path"][0]["chain"] == "filter-output-pre-dnat"
