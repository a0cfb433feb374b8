"""`kplab ct`: conntrack tools. `kplab ct replay` runs a JSONL TCP flow through the node's conntrack."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import click

from kplab.errors import InputError
from kplab.netfilter.conntrack.profiles import HOST, KERNEL_PROFILES, Sysctls, get_profile
from kplab.netfilter.conntrack.replay import ISN_ORIG, ISN_REPLY, Node, parse_sequence, replay
from kplab.untrusted import read_text


@click.group("ct")
def ct() -> None:
    """Linux conntrack, emulated per kernel profile."""


@ct.command("replay")
@click.argument("sequence", type=click.Path(path_type=Path))
@click.option(
    "--kernel",
    type=click.Choice(KERNEL_PROFILES),
    default=HOST,
    show_default=True,
    help="Kernel profile: 5.4 (4.19..6.0), 6.1 (6.1 and later), host (from uname -r).",
)
@click.option(
    "--sysctl",
    "sysctls",
    multiple=True,
    metavar="KEY=VALUE",
    help="A net.netfilter.nf_conntrack_* sysctl for the node (repeatable).",
)
@click.option(
    "--drop-invalid",
    is_flag=True,
    help="Add `-A FORWARD -m conntrack --ctstate INVALID -j DROP` on the node.",
)
@click.option(
    "--isn-orig",
    type=click.IntRange(0, 2**32 - 1),
    default=ISN_ORIG,
    show_default=True,
    help="The client's initial sequence number (orig seq/ack are relative to it).",
)
@click.option(
    "--isn-reply",
    type=click.IntRange(0, 2**32 - 1),
    default=ISN_REPLY,
    show_default=True,
    help="The server pod's initial sequence number.",
)
@click.option("-o", "--output", type=click.Choice(["json", "text"]), default="json", show_default=True)
def replay_cmd(
    sequence: Path,
    kernel: str,
    sysctls: tuple[str, ...],
    drop_invalid: bool,
    isn_orig: int,
    isn_reply: int,
    output: str,
) -> None:
    """Replay SEQUENCE.jsonl (client 10.0.0.2 -> VIP 192.168.0.2:80 DNATed to 10.0.1.2:80).

    Packet lines: {"dir": "orig"|"reply", "flags": "SA", "seq": N, "ack": N, "win": N, "len": N,
    "opts": {...}, "sack": [[l, r]]}; actions: {"action": "ct-delete"}, {"action": "advance",
    "seconds": S}. One JSON object is printed per input line, then {"stats": {...}}.
    """
    steps = parse_sequence(read_text(sequence), str(sequence))
    profile = get_profile(kernel, platform.release())
    settings = Sysctls()
    for item in sysctls:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--sysctl {item!r}: expected KEY=VALUE")
        settings.set(key, value)
    node = Node(profile, settings, drop_invalid=drop_invalid)
    for obj in replay(steps, node, isn_orig, isn_reply):
        click.echo(json.dumps(obj, allow_nan=False) if output == "json" else _text(obj))


def _text(obj: dict[str, Any]) -> str:
    if "stats" in obj:
        return "stats: " + " ".join(f"{k}={v}" for k, v in obj["stats"].items() if v)
    if "action" in obj:
        return f"{obj['i']:>3} {obj['action']}" + (f" {obj['seconds']}s" if "seconds" in obj else "")
    entry = obj["entry"]
    state = "IGNORE" if obj["ignored"] else obj["ctstate"]
    where = f"{obj['out_src']} > {obj['out_dst']}"
    ct_text = "no entry"
    if entry["state"] is not None:
        ct_text = f"{entry['state']} {entry['timeout_s']}s{' ASSURED' if entry['assured'] else ''}"
    nat = "NAT" if obj["nat"] else "raw"
    line = f"{obj['i']:>3} {state:<11} {obj['verdict']:<6} {nat} {where:<42} {ct_text}"
    return line + (f"  ({obj['reason']})" if obj["reason"] else "")
