"""The shared JSONL sequences (tests/data/ct) and the emulator/kernel comparison."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplab.netfilter.conntrack.profiles import Profile, Sysctls
from kplab.netfilter.conntrack.replay import (
    ISN_ORIG,
    ISN_REPLY,
    Node,
    Step,
    flow_entry,
    parse_sequence,
    replay,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "ct"


@dataclass
class Case:
    name: str
    steps: list[Step]
    sysctl: dict[str, int] = field(default_factory=dict)
    drop_invalid: bool = False


def load_cases() -> list[Case]:
    files = {p.stem: parse_sequence(p.read_text(), str(p)) for p in sorted(DATA.glob("*.jsonl"))}
    cases = []
    for name, steps in files.items():
        sidecar = DATA / f"{name}.sysctl.json"  # saved with a shrunk generated failure
        sysctl = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        cases.append(Case(name, steps, sysctl))
    options = json.loads((DATA / "options.json").read_text())
    for name, opt in sorted(options.items()):
        cases.append(Case(name, files[opt["base"]], opt.get("sysctl", {}), opt.get("drop_invalid", False)))
    return cases


def emulate(case: Case, profile: Profile, client_port: int) -> list[dict[str, Any]]:
    """The emulator's view, step by step, with the invalid counter's delta per step."""
    sysctls = Sysctls(nf_conntrack_acct=1)
    for key, value in case.sysctl.items():
        sysctls.set(key, str(value))
    node = Node(profile, sysctls, drop_invalid=case.drop_invalid, client_port=client_port)
    out = []
    for i, step in enumerate(case.steps):
        before = node.ct.stats.invalid
        row = replay([step], node, ISN_ORIG, ISN_REPLY)[0]
        row["i"] = i
        row["invalid_delta"] = node.ct.stats.invalid - before
        entry = flow_entry(node)
        row["acct"] = list(entry.acct) if entry is not None and entry.acct is not None else None
        out.append(row)
    return out


def _port_class(addr: str, client_port: int) -> str:
    """A source port NAT remapped is random on both sides: compare only that it was remapped."""
    host, _, port = addr.partition(":")
    return addr if int(port) in (80, client_port) else f"{host}:remapped"


def compare(emu: list[dict[str, Any]], kern: list[dict[str, Any]], client_port: int) -> list[str]:
    """Disagreements, one line each: verdict, ctstate, NAT, entry state/ASSURED/timeout, invalid."""
    problems = []
    for e, k in zip(emu, kern, strict=True):
        if "action" in e:
            continue
        where = f"step {e['i']}"
        for key in ("verdict", "invalid_delta"):
            if e[key] != k[key]:
                problems.append(f"{where}: {key} emulator={e[key]} kernel={k[key]}")
        if e["verdict"] == "ACCEPT" and k["verdict"] == "ACCEPT":
            for key in ("out_src", "out_dst"):
                if _port_class(e[key], client_port) != _port_class(k[key], client_port):
                    problems.append(f"{where}: {key} emulator={e[key]} kernel={k[key]}")
            for key in ("ctstate", "nat"):
                if e[key] != k[key]:
                    problems.append(f"{where}: {key} emulator={e[key]} kernel={k[key]}")
        if "acct" in e and e["acct"] != k["acct"]:
            problems.append(f"{where}: packets/bytes emulator={e['acct']} kernel={k['acct']}")
        ee, ke = e["entry"], k["entry"]
        if (ee["state"], ee["assured"]) != (ke["state"], ke["assured"]):
            problems.append(f"{where}: entry emulator={ee} kernel={ke}")
        elif ee["timeout_s"] is not None and not ee["timeout_s"] - 3 <= ke["timeout_s"] <= ee["timeout_s"]:
            problems.append(f"{where}: timeout emulator={ee['timeout_s']} kernel={ke['timeout_s']}")
    return problems
