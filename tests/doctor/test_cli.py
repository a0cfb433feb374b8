"""`kplab doctor` end to end: JSON contract, exit codes, --fail-on, collect, and bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import DATA, SYSCTL_DEFAULT, run, run_json


def test_json_contract_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "doctor", "--iptables-save", str(DATA / "kp-1.14.save"), "--sysctl",
                         SYSCTL_DEFAULT, "--uname", "5.4.0-150-generic")  # fmt: skip
    assert code == 1
    assert set(doc) == {"findings", "inputs"}
    ids = [f["id"] for f in doc["findings"]]
    assert ids[0] == "invalid-not-dropped" and set(ids) == {
        "invalid-not-dropped",
        "loose-pickup-risk",
        "kernel-era",
    }
    for f in doc["findings"]:
        assert {"id", "severity", "evidence", "fix"} <= set(f)
        assert f["severity"] in ("info", "warning", "critical") and f["evidence"]
    assert doc["inputs"]["iptables_save"]["service_dnat_rules"] == 3
    assert doc["inputs"]["uname"] == "5.4.0-150-generic"


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 0), ("warning", 1), ("info", 1)])
def test_fail_on(capsys: pytest.CaptureFixture[str], fail_on: str, code: int) -> None:
    got, _ = run_json(capsys, "doctor", "--iptables-save", str(DATA / "kp-1.15.save"), "--fail-on", fail_on)
    assert got == code


def test_healthy_is_exit_zero_with_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "doctor", "--uname", "6.18.44", "--fail-on", "warning")
    assert code == 0 and "kernel-era" in out


def test_iptables_save_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    data = (DATA / "kp-1.14.save").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, doc = run_json(capsys, "doctor", "--iptables-save", "-")
    assert code == 1 and doc["findings"][0]["evidence"][0].startswith("<stdin>:")


def test_collect_prints_read_only_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "doctor", "collect", "--node", "worker-1")
    assert code == 0
    assert "kubectl debug node/worker-1" in out
    for needed in (
        "iptables-save",
        "nft -j list ruleset",
        "sysctl -a",
        "/proc/net/stat/nf_conntrack",
        "uname -r",
    ):
        assert needed in out
    for writer in ("iptables -A", "iptables -I", "sysctl -w", "conntrack -D", "conntrack -F", "modprobe"):
        assert writer not in out


def _bad(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("option", "content", "expect"),
    [
        ("--iptables-save", b"*filter\n-A FORWARD -j\nCOMMIT\n", "bad.txt:2:"),
        ("--iptables-save", b"\xff\xfe garbage", "bad.txt:1: not UTF-8"),
        ("--nft", b"{not json", "bad.txt:1: not JSON"),
        ("--nft", b'{"nftables": 3}', "bad.txt: nftables: expected"),
        ("--nft", b"table ip t {\n\tchain c {\n\t\tip daddr 1.2.3 drop\n", "bad.txt:3: not an IPv4 address"),
        ("--sysctl", b"net.netfilter.x = 1\nthis is not a sysctl\n", "bad.txt:2:"),
        ("--sysctl", b"net.netfilter.nf_conntrack_tcp_be_liberal = yes\n", "bad.txt:1:"),
        ("--conntrack-stats", b"entries found\n0000 zz\n", "bad.txt:2:"),
        ("--conntrack-stats", b"hello\n", "bad.txt:1:"),
        ("--kube-proxy-config", b"kind: [", "bad.txt:"),
        ("--kube-proxy-config", b"kind: KubeProxyConfiguration\nmode: userspace\n", "bad.txt:doc 1: mode"),
        ("--pcap", b"\x00\x01\x02\x03 not a capture", "bad.txt: not a pcap"),
        ("--pcap", b"\x0a\x0d\x0d\x0a\xff\xff\x00\x00", "bad.txt: malformed capture"),
    ],
)  # fmt: skip
def test_garbage_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str,
                                        content: bytes, expect: str) -> None:  # fmt: skip
    extra = ["--service-cidr", "10.96.0.0/12"] if option == "--pcap" else []
    code, out, err = run(capsys, "doctor", option, _bad(tmp_path, "bad.txt", content), *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("kplab: ") and expect in err, err


@pytest.mark.parametrize(
    "args",
    [["--uname", "banana"], ["--pcap", "x.pcap"], ["--pcap", "x.pcap", "--service-cidr", "10.0.0.0/33"],
     [], ["--live", "--uname", "6.1"], ["--iptables-save", "/nonexistent/file"],
     ["--conntrack-stats", str(DATA / "proc-stat-before.txt"), "--stats-interval", "0"]],
)  # fmt: skip
def test_bad_options_are_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(capsys, "doctor", *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("kplab: ")
