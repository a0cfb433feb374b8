"""Findings from captures: escaped reverse NAT and what the client's RST did to the server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kplab.diagnose.capture import ACK, FIN, PSH, RST, SYN, Segment
from kplab.diagnose.flows import Escape, find_escapes
from kplab.diagnose.inputs import Inputs
from kplab.diagnose.model import Finding, Severity
from kplab.packet import fmt_ip

SHOW = 5  # escape stories quoted in the evidence


def timestamp(ts_ns: int) -> str:
    """Capture time: UTC date and time for a wall-clock capture, seconds for a simulated one."""
    seconds, frac = divmod(ts_ns, 1_000_000_000)
    if seconds < 1_000_000_000:  # before 2001: a simulated clock that starts at 0
        return f"{seconds}.{frac:09d}s"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def describe(seg: Segment) -> str:
    flags = "".join(
        c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, ".")) if seg.flags & bit
    )
    where = f"{seg.file}#{seg.frame}" + (f" [{seg.iface}]" if seg.iface else "")
    text = (
        f"{timestamp(seg.ts_ns)} {where} {fmt_ip(seg.src)}:{seg.sport} > {fmt_ip(seg.dst)}:{seg.dport} "
        f"[{flags}] seq={seg.seq} ack={seg.ack} len={seg.length}"
    )
    return f"{text} ({seg.comment})" if seg.comment else text


def _endpoint(ep: tuple[int, int]) -> str:
    return f"{fmt_ip(ep[0])}:{ep[1]}"


def _story(e: Escape) -> list[str]:
    head = (
        f"client {_endpoint(e.flow.client)} connected to {_endpoint(e.flow.vip)}; "
        f"backend {_endpoint(e.backend)} sent {e.escaped_count} un-NATed packet(s)"
    )
    if not e.seq_match:
        head += " (sequence numbers do not continue the VIP flow: maybe another connection)"
    lines = [head, f"  escaped: {describe(e.escaped)}"]
    if e.rst is None:
        return [*lines, "  no RST from the client to the pod IP in the capture"]
    exact = {True: "equals", False: "differs from", None: "cannot be compared with"}[e.exact]
    lines.append(f"  client RST: {describe(e.rst)}; its seq {exact} the server's rcv_nxt {e.rcv_nxt}")
    answer = e.answer
    pure_ack = answer is not None and answer.length == 0 and not answer.flags & (RST | SYN | FIN)
    if e.outcome == "survived" and answer is not None and answer is not e.outcome_segment and pure_ack:
        lines.append(f"  challenge ACK (ack = rcv_nxt {answer.ack}): {describe(answer)}")
    if e.outcome_segment is not None:
        verb = "server connection reset; it then answers with" if e.outcome == "reset" else "server lived on:"
        lines.append(f"  {verb} {describe(e.outcome_segment)}")
    else:
        lines.append("  what the server did afterwards is not in the capture")
    return lines


def _data(e: Escape) -> dict[str, Any]:
    return {
        "client": _endpoint(e.flow.client),
        "vip": _endpoint(e.flow.vip),
        "backend": _endpoint(e.backend),
        "escaped_ts_ns": e.escaped.ts_ns,
        "escaped_frame": f"{e.escaped.file}#{e.escaped.frame}",
        "escaped_packets": e.escaped_count,
        "seq_match": e.seq_match,
        "rst_ts_ns": e.rst.ts_ns if e.rst else None,
        "rst_frame": f"{e.rst.file}#{e.rst.frame}" if e.rst else None,
        "rst_exact": e.exact,
        "server": e.outcome,
    }


MEANS_ESCAPE = (
    "A backend's reply reached a client from the pod IP instead of the Service VIP: conntrack had called it "
    "INVALID (or its entry was gone) so NAT skipped it. The client RSTs the unknown 4-tuple; an exact RST "
    "kills the server's connection."
)
FIX_ESCAPE = [
    "Stop the escape on the client's node: see invalid-not-dropped for the DROP rule and be_liberal.",
    "Gather that node's iptables-save, sysctls and conntrack -S (kplab doctor collect).",
]
MEANS_SURVIVED = (
    "The RST's seq (the escaped segment's ACK) was in the server's window but not its rcv_nxt, so Linux "
    "answered with a challenge ACK (RFC 5961) and kept the connection. Typical when the escaped segment "
    "ACKed data conntrack had not seen. Escapes still happen; the next exact one resets."
)


def pcap_findings(inp: Inputs) -> list[Finding]:
    if not inp.captures:
        return []
    segments = [s for c in inp.captures for s in c.segments]
    escapes = find_escapes(segments, inp.service_cidrs, inp.pod_cidrs)
    if not escapes:
        return []
    evidence = [line for e in escapes[:SHOW] for line in _story(e)]
    if len(escapes) > SHOW:
        evidence.append(f"... and {len(escapes) - SHOW} more connections with escaped packets")
    reset = sum(e.outcome == "reset" for e in escapes)
    title = f"{len(escapes)} connection(s) got packets that escaped reverse NAT; {reset} server(s) reset"
    data = {"connections": [_data(e) for e in escapes], "servers_reset": reset}
    out = [Finding("escaped-reverse-nat", Severity.CRITICAL, title, MEANS_ESCAPE, evidence, FIX_ESCAPE, data)]
    survived = [e for e in escapes if e.exact is False and e.outcome == "survived"]
    if survived:
        title = f"{len(survived)} connection(s) survived the client's RST (inexact sequence number)"
        evidence = [line for e in survived[:SHOW] for line in _story(e)]
        data = {"connections": [_data(e) for e in survived]}
        out.append(
            Finding("challenge-ack-survived", Severity.INFO, title, MEANS_SURVIVED, evidence, [], data)
        )
    return out
