"""Sequence diagrams of a connection's packets: SVG (self-contained) and Mermaid text.

Lanes are the places a packet passes (client pod, client node, server node, server pod);
each message is one hop of one packet, with a label (addresses, flags) and an optional note
(a conntrack verdict, a NAT translation). `bad` messages are drawn in red: the packets of the
failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True, slots=True)
class Message:
    time_ns: int
    src: str
    dst: str
    label: str
    note: str = ""
    bad: bool = False


@dataclass(frozen=True, slots=True)
class Diagram:
    title: str
    lanes: tuple[str, ...]
    messages: tuple[Message, ...]


def _ms(time_ns: int) -> str:
    return f"{time_ns / 1e6:.3f} ms"


def to_mermaid(diagram: Diagram) -> str:
    ids = {lane: f"L{i}" for i, lane in enumerate(diagram.lanes)}
    out = ["sequenceDiagram", f"    title {diagram.title}"]
    out += [f"    participant {ids[lane]} as {lane}" for lane in diagram.lanes]
    for m in diagram.messages:
        arrow = "-x" if m.bad else "->>"
        label = f"{_ms(m.time_ns)} {m.label}".replace(";", ",").replace("#", "")
        out.append(f"    {ids[m.src]}{arrow}{ids[m.dst]}: {label}")
        if m.note:
            side = ids[m.dst]
            out.append(f"    Note over {side}: {m.note.replace(';', ',').replace('#', '')}")
    return "\n".join(out) + "\n"


_LANE_W = 330
_LEFT = 90
_TOP = 90
_ROW = 84
_FONT = "font-family='DejaVu Sans, Arial, sans-serif'"


def _arrow(x1: int, x2: int, y: int, color: str) -> str:
    head = 9 if x2 > x1 else -9
    return (
        f"<line x1='{x1}' y1='{y}' x2='{x2 - head}' y2='{y}' stroke='{color}' stroke-width='2'/>"
        f"<polygon points='{x2},{y} {x2 - head},{y - 5} {x2 - head},{y + 5}' fill='{color}'/>"
    )


def to_svg(diagram: Diagram) -> str:
    """A standalone SVG: lane headers, life lines, one arrow per message with time and label."""
    x_of = {lane: _LEFT + _LANE_W // 2 + i * _LANE_W for i, lane in enumerate(diagram.lanes)}
    width = _LEFT + 20 + _LANE_W * len(diagram.lanes)
    height = _TOP + _ROW * (len(diagram.messages) + 1)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {_FONT}>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='{width // 2}' y='28' font-size='18' font-weight='bold' text-anchor='middle'>"
        f"{escape(diagram.title)}</text>",
    ]
    for lane, x in x_of.items():
        parts.append(
            f"<rect x='{x - 100}' y='44' width='200' height='30' rx='6' fill='#e8eef7' stroke='#4a6fa5'/>"
            f"<text x='{x}' y='64' font-size='13' text-anchor='middle'>{escape(lane)}</text>"
            f"<line x1='{x}' y1='74' x2='{x}' y2='{height - 10}' stroke='#9aa' stroke-dasharray='4 4'/>"
        )
    for i, m in enumerate(diagram.messages):
        y = _TOP + 30 + i * _ROW
        x1, x2 = x_of[m.src], x_of[m.dst]
        color = "#c0392b" if m.bad else "#2c3e50"
        mid = (x1 + x2) // 2
        parts.append(_arrow(x1, x2, y, color))
        head, _, tail = m.label.partition(" seq=")
        parts.append(
            f"<text x='{mid}' y='{y - 8}' font-size='12' text-anchor='middle' fill='{color}'>"
            f"{escape(head)}</text>"
            f"<text x='8' y='{y + 4}' font-size='11' fill='#667'>{escape(_ms(m.time_ns))}</text>"
        )
        if tail:
            parts.append(
                f"<text x='{mid}' y='{y + 15}' font-size='10' text-anchor='middle' fill='#556'>"
                f"{escape('seq=' + tail)}</text>"
            )
        if m.note:
            parts.append(
                f"<text x='{mid}' y='{y + 30}' font-size='11' font-style='italic' text-anchor='middle' "
                f"fill='{color}'>{escape(m.note)}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
