"""`kplab ct replay` end to end, and the IPv4/TCP codec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kplab.cli import cli
from kplab.packet import TCP, Packet, ip
from kplab.packet.codec import decode, encode, tcp_checksum_ok

from .cases import DATA

KEYS = {"i", "ctstate", "ignored", "verdict", "reason", "nat", "out_src", "out_dst", "entry"}


def test_replay_json_output_keys_and_values() -> None:
    args = ["ct", "replay", str(DATA / "seq_under_old_duplicate.jsonl"), "--kernel", "5.4", "--drop-invalid"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert all(set(r) == KEYS for r in rows[:-1]) and set(rows[-1]) == {"stats"}
    assert rows[0]["out_dst"] == "10.0.1.2:80" and rows[0]["entry"]["state"] == "SYN_SENT"
    old = rows[9]
    assert (old["ctstate"], old["verdict"], old["nat"]) == ("INVALID", "DROP", False)
    assert rows[-1]["stats"]["invalid"] == 1


def test_replay_sysctl_and_text_output(tmp_path: Path) -> None:
    seq = tmp_path / "s.jsonl"
    seq.write_text(
        '{"action": "advance", "seconds": 5}\n{"dir": "reply", "flags": "A", "seq": 1, "ack": 1}\n'
    )
    args = ["ct", "replay", str(seq), "--kernel", "6.1", "--sysctl", "nf_conntrack_tcp_loose=0", "-o", "text"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["0", "advance", "5.0s"]
    assert "INVALID" in lines[1] and "no entry" in lines[1] and lines[2].startswith("stats: invalid=1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"dir": "orig", "flags": "S"}\n{"dir": "up"}\n', "s.jsonl:2: 'dir' must be"),
        ('{"dir": "orig", "flags": "SX"}\n', "s.jsonl:1: unknown TCP flag letter 'X'"),
        ('{"dir": "orig", "seq": -1}\n', "s.jsonl:1: 'seq' must be an integer"),
        ("not json\n", "s.jsonl:1: not JSON"),
        ('{"action": "reboot"}\n', "s.jsonl:1: unknown action"),
    ],
)
def test_bad_sequences_are_one_line_exit_2(tmp_path: Path, text: str, message: str) -> None:
    seq = tmp_path / "s.jsonl"
    seq.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-c", "from kplab.cli import main; main()", "ct", "replay", str(seq)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and message in proc.stderr


def test_bad_sysctl_is_an_input_error(tmp_path: Path) -> None:
    seq = tmp_path / "s.jsonl"
    seq.write_text("")
    result = CliRunner().invoke(cli, ["ct", "replay", str(seq), "--sysctl", "nf_conntrack_bogus=1"])
    assert result.exit_code != 0 and "unknown conntrack sysctl" in str(result.exception)


def test_codec_roundtrip_with_options_and_checksums() -> None:
    pkt = Packet(
        ip("10.0.0.2"),
        ip("192.168.0.2"),
        TCP,
        40000,
        80,
        0x12,
        4_000_000_000,
        17,
        65160,
        3,
        mss=1460,
        wscale=7,
        sackok=True,
        sack=((5, 9), (20, 30)),
    )
    raw = encode(pkt)
    assert tcp_checksum_ok(raw)
    back = decode(raw)
    fields = (
        "src",
        "dst",
        "sport",
        "dport",
        "flags",
        "seq",
        "ack",
        "win",
        "length",
        "mss",
        "wscale",
        "sackok",
    )
    assert all(getattr(back, f) == getattr(pkt, f) for f in fields) and back.sack == pkt.sack
    corrupted = raw[:-1] + bytes([raw[-1] ^ 1])
    assert not tcp_checksum_ok(corrupted)
