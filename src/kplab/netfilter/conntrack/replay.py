"""`kplab ct replay`: one TCP flow through the node of the seed's topology, from a JSONL sequence.

Topology: client pod 10.0.0.2 -> Service VIP 192.168.0.2:80, DNATed on the node to the server
pod 10.0.1.2:80. `orig` lines travel client -> VIP, `reply` lines server pod -> client. Sequence
and ACK numbers are relative to the sender's / receiver's initial sequence numbers.
The same parsed steps drive the real-kernel differential test (tests/conntrack/).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kplab.errors import InputError, located
from kplab.netfilter.conntrack.entry import Entry
from kplab.netfilter.conntrack.profiles import Profile, S, Sysctls
from kplab.netfilter.conntrack.table import INVALID, Conntrack, CtResult
from kplab.netfilter.conntrack.tcp_table import TcpState
from kplab.netfilter.ctview import FiveTuple, Nat
from kplab.packet import TCP, Packet, flags_from_str, fmt_ipport, ip
from kplab.untrusted import load_json, shown

CLIENT = ip("10.0.0.2")
VIP = ip("192.168.0.2")
POD = ip("10.0.1.2")
PORT = 80
CLIENT_PORT = 40000
ISN_ORIG = 1_000_000
ISN_REPLY = 3_000_000_000
M = 0xFFFFFFFF
START_NS = 1_000 * S
MAX_ADVANCE_S = 10_000_000  # 115 days: beyond every conntrack timeout

_PACKET_KEYS = {"dir", "flags", "seq", "ack", "win", "len", "opts", "sack"}
_OPT_KEYS = {"mss", "wscale", "sackok"}


@dataclass(frozen=True, slots=True)
class Segment:
    """A packet line, relative numbers as written."""

    dir: str
    flags: int
    seq: int
    ack: int
    win: int
    len: int
    mss: int | None = None
    wscale: int | None = None
    sackok: bool = False
    sack: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    action: str  # "ct-delete" | "advance"
    seconds: float = 0.0


Step = Segment | Action


def _err(where: str, message: str) -> InputError:
    file, _, line = where.rpartition("|")
    return located(file, line, message)


def _int(obj: dict[str, Any], key: str, where: str, low: int, high: int, default: int | None = None) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _err(where, f"{key!r} must be an integer in {low}..{high}, got {shown(value)}")
    return value


def _u32(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= M


def parse_line(obj: Any, where: str) -> Step:
    """One JSON object -> a Segment or an Action. `where` is `file|line` for error messages."""
    if not isinstance(obj, dict):
        raise _err(where, "each line must be a JSON object")
    if "action" in obj:
        if obj["action"] == "ct-delete":
            return Action("ct-delete")
        if obj["action"] == "advance":
            seconds = obj.get("seconds")
            if (
                not isinstance(seconds, int | float)
                or isinstance(seconds, bool)
                or not 0 <= seconds <= MAX_ADVANCE_S  # (refuses NaN too)
            ):
                raise _err(where, f"advance needs 'seconds' in 0..{MAX_ADVANCE_S}, got {shown(seconds)}")
            return Action("advance", float(seconds))
        raise _err(where, f"unknown action {shown(obj['action'])} (ct-delete, advance)")
    unknown = set(obj) - _PACKET_KEYS
    if unknown:
        raise _err(where, f"unknown key(s) {shown(sorted(unknown))}")
    if obj.get("dir") not in ("orig", "reply"):
        raise _err(where, '\'dir\' must be "orig" or "reply"')
    try:
        flags = flags_from_str(str(obj.get("flags", "")))
    except ValueError as exc:
        raise _err(where, str(exc)) from None
    opts = obj.get("opts", {})
    if not isinstance(opts, dict) or set(opts) - _OPT_KEYS:
        raise _err(where, "'opts' must be an object with mss, wscale, sackok")
    sackok = opts.get("sackok", False)
    if not isinstance(sackok, bool):
        raise _err(where, f"'sackok' must be true or false, got {shown(sackok)}")
    sack = obj.get("sack", [])
    if (
        not isinstance(sack, list)
        or len(sack) > 4
        or not all(isinstance(b, list) and len(b) == 2 and all(_u32(x) for x in b) for b in sack)
    ):
        raise _err(where, "'sack' must be a list of at most 4 [left, right] pairs of 32-bit numbers")
    return Segment(
        dir=obj["dir"],
        flags=flags,
        seq=_int(obj, "seq", where, 0, M, 0),
        ack=_int(obj, "ack", where, 0, M, 0),
        win=_int(obj, "win", where, 0, 65535, 0),
        len=_int(obj, "len", where, 0, 65535, 0),
        mss=_int(opts, "mss", where, 0, 65535) if "mss" in opts else None,
        wscale=_int(opts, "wscale", where, 0, 255) if "wscale" in opts else None,
        sackok=sackok,
        sack=tuple((b[0], b[1]) for b in sack),
    )


def parse_sequence(text: str, filename: str) -> list[Step]:
    steps: list[Step] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = load_json(line, filename, number)
        steps.append(parse_line(obj, f"{filename}|{number}"))
    return steps


def to_packet(seg: Segment, isn_orig: int, isn_reply: int, client_port: int = CLIENT_PORT) -> Packet:
    """The absolute packet as it arrives at the node (orig: client -> VIP; reply: pod -> client)."""
    orig = seg.dir == "orig"
    isn_self, isn_peer = (isn_orig, isn_reply) if orig else (isn_reply, isn_orig)
    acked = seg.flags & 0x10
    return Packet(
        src=CLIENT if orig else POD,
        dst=VIP if orig else CLIENT,
        proto=TCP,
        sport=client_port if orig else PORT,
        dport=PORT if orig else client_port,
        flags=seg.flags,
        seq=(isn_self + seg.seq) & M,
        ack=(isn_peer + seg.ack) & M if acked else seg.ack,
        win=seg.win,
        length=seg.len,
        mss=seg.mss,
        wscale=seg.wscale,
        sackok=seg.sackok,
        sack=tuple(((isn_peer + a) & M, (isn_peer + b) & M) for a, b in seg.sack),
    )


def flow_tuples(client_port: int) -> list[FiveTuple]:
    """Every tuple an entry of this flow may be found under (for ct-delete and reporting)."""
    return [
        FiveTuple(CLIENT, VIP, TCP, client_port, PORT),
        FiveTuple(POD, CLIENT, TCP, PORT, client_port),
        FiveTuple(CLIENT, POD, TCP, client_port, PORT),
    ]


@dataclass
class Node:
    """The node: conntrack, the Service's DNAT rule, optionally FORWARD `--ctstate INVALID -j DROP`."""

    profile: Profile
    sysctls: Sysctls
    drop_invalid: bool = False
    seed: int = 0
    client_port: int = CLIENT_PORT
    now_ns: int = START_NS
    ct: Conntrack = field(init=False)

    def __post_init__(self) -> None:
        self.ct = Conntrack(self.profile, self.sysctls, random.Random(self.seed))

    def forward(self, pkt: Packet) -> tuple[CtResult, str]:
        """One packet through PREROUTING, FORWARD and POSTROUTING. Returns (result, ACCEPT|DROP)."""
        ct = self.ct
        res = ct.lookup(pkt, "PREROUTING", self.now_ns)
        if res.verdict == "DROP":
            return res, "DROP"
        if ct.nat_pending(res, "PREROUTING"):
            dnat = pkt.dst == VIP and pkt.proto == TCP and pkt.dport == PORT
            ct.bind_nat(res, Nat("DNAT", POD, POD, PORT, PORT) if dnat else None, "PREROUTING")
        ct.apply_nat(pkt, res, "PREROUTING")
        if self.drop_invalid and res.ctstate == INVALID:
            return res, "DROP"
        ct.apply_nat(pkt, res, "POSTROUTING")
        if not ct.confirm(res, self.now_ns):
            return res, "DROP"
        return res, "ACCEPT"

    def delete_flow(self) -> None:
        for t in flow_tuples(self.client_port):
            self.ct.delete(t)


def flow_entry(node: Node) -> Entry | None:
    """The flow's entry: the first of `flow_tuples` that is some entry's original tuple."""
    for t in flow_tuples(node.client_port):
        entry = node.ct.find(t)
        if entry is not None and entry.orig == t:
            return entry
    return None


def _entry_report(node: Node) -> dict[str, Any]:
    entry = flow_entry(node)
    if entry is None:
        return {"state": None, "timeout_s": None, "assured": False}
    return {
        "state": TcpState(entry.state).name if entry.proto == TCP else None,
        "timeout_s": max(0, (entry.timeout_ns - node.now_ns) // S),
        "assured": entry.assured,
    }


def replay(steps: list[Step], node: Node, isn_orig: int, isn_reply: int) -> list[dict[str, Any]]:
    """Run the steps; one output object per step, then the final stats object."""
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if isinstance(step, Action):
            if step.action == "advance":
                node.now_ns += int(step.seconds * S)
                out.append({"i": i, "action": "advance", "seconds": step.seconds})
            else:
                node.delete_flow()
                out.append({"i": i, "action": "ct-delete"})
            continue
        pkt = to_packet(step, isn_orig, isn_reply, node.client_port)
        before = (pkt.src, pkt.sport) if step.dir == "reply" else (pkt.dst, pkt.dport)
        res, verdict = node.forward(pkt)
        after = (pkt.src, pkt.sport) if step.dir == "reply" else (pkt.dst, pkt.dport)
        out.append(
            {
                "i": i,
                "ctstate": res.ctstate,
                "ignored": res.ignored,
                "verdict": verdict,
                "reason": res.reason,
                "nat": before != after,
                "out_src": fmt_ipport(pkt.src, pkt.sport),
                "out_dst": fmt_ipport(pkt.dst, pkt.dport),
                "entry": _entry_report(node),
            }
        )
    out.append({"stats": node.ct.stats.as_dict()})
    return out
