"""Two sans-IO stacks wired by hand: segments are moved between them explicitly."""

from __future__ import annotations

import random

from kplab.packet import Packet, ip
from kplab.tcp import Connection, TcpConfig, TcpStack, TcpState

A = ip("10.0.0.1")
B = ip("10.0.0.2")


class Recorder:
    """A minimal application: remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_connected(self, conn: Connection) -> None:
        self.events.append("connected")

    def on_data(self, conn: Connection) -> None:
        self.events.append("data")

    def on_closed(self, conn: Connection) -> None:
        self.events.append(f"closed:{conn.error}")


def stacks(cfg: TcpConfig | None = None, seed: int = 1) -> tuple[TcpStack, TcpStack]:
    config = cfg or TcpConfig()
    return TcpStack(config, random.Random(seed)), TcpStack(config, random.Random(seed + 1))


def take(stack: TcpStack) -> list[Packet]:
    out = stack.out[:]
    stack.out.clear()
    return out


def shuttle(a: TcpStack, b: TcpStack, now_ns: int = 0, rounds: int = 50) -> list[Packet]:
    """Deliver everything queued on either side until both are quiet; returns all moved packets."""
    moved: list[Packet] = []
    for _ in range(rounds):
        pa, pb = take(a), take(b)
        if not pa and not pb:
            return moved
        for p in pa:
            moved.append(p)
            b.input(p, now_ns)
        for p in pb:
            moved.append(p)
            a.input(p, now_ns)
    raise AssertionError("stacks never went quiet")


def established(cfg: TcpConfig | None = None) -> tuple[TcpStack, TcpStack, Connection, Connection]:
    """Client stack `a` connected to server stack `b` on port 80; returns (a, b, client, server)."""
    a, b = stacks(cfg)
    b.listen(B, 80)
    client = a.connect(A, B, 80, 0)
    shuttle(a, b)
    server = b.conns[(B, 80, A, client.lport)]
    assert client.state == server.state == TcpState.ESTABLISHED
    b.events.clear()
    a.events.clear()
    return a, b, client, server
