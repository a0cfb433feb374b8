"""The fabric between nodes: a switch that forwards by destination (node address or pod CIDR).

Each node has an uplink (node -> switch) and a downlink (switch -> node); congestion builds in
the queue of whichever link is the bottleneck, reordering comes from the links' fault models.
"""

from __future__ import annotations

from collections.abc import Callable

from kplab.packet import Packet


class Switch:
    def __init__(self, name: str = "fabric") -> None:
        self.name = name
        self.ports: list[tuple[int, int, Callable[[Packet], None]]] = []  # (network, mask, send)
        self.drops: dict[str, int] = {}
        self.forwarded = 0

    def add_port(self, networks: list[tuple[int, int]], send: Callable[[Packet], None]) -> None:
        for network, mask in networks:
            self.ports.append((network & mask, mask, send))
        self.ports.sort(key=lambda p: -bin(p[1]).count("1"))

    def receive(self, pkt: Packet) -> None:
        for network, mask, send in self.ports:
            if pkt.dst & mask == network:
                self.forwarded += 1
                send(pkt)
                return
        self.drops["no port for destination"] = self.drops.get("no port for destination", 0) + 1
