"""A pod: its own network namespace with one address, one interface to its node, a TCP stack.

Pods hold no rules, so (as in the kernel, where conntrack hooks register per namespace only when
rules need them) they track nothing: a segment is handed to the TCP stack as it arrives.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kplab.packet import ICMP, TCP, Packet
from kplab.sim.scheduler import Scheduler
from kplab.tcp import TcpConfig, TcpHost, TcpStack


class Pod:
    def __init__(
        self,
        name: str,
        node: str,
        ip: int,
        sched: Scheduler,
        rng: random.Random,
        tcp: TcpConfig | None = None,
    ) -> None:
        self.name = name
        self.node = node
        self.ip = ip
        self.out: Callable[[Packet], None] | None = None
        self.tcp = TcpHost(sched, TcpStack(tcp or TcpConfig(), rng), self._transmit)
        self.drops: dict[str, int] = {}
        # Observers see every packet the pod sends ("tx") and receives ("rx"): (pod, way, packet).
        self.observers: list[Callable[[Pod, str, Packet], None]] = []
        self.sent = 0
        self.received = 0
        self._uid = 0

    def inject(self, pkt: Packet) -> None:
        """Send a crafted packet from this pod, as a raw socket would (the TCP stack never sees it)."""
        self._transmit(pkt)

    def _transmit(self, pkt: Packet) -> None:
        if self.out is None:
            raise RuntimeError(f"pod {self.name} has no link")
        self.sent += 1
        for observer in self.observers:
            observer(self, "tx", pkt)
        self.out(pkt)

    def receive(self, pkt: Packet) -> None:
        self.received += 1
        for observer in self.observers:
            observer(self, "rx", pkt)
        if pkt.dst != self.ip:
            self._drop("not addressed to this pod")
            return
        if pkt.proto == ICMP and pkt.icmp_type == 3:  # destination unreachable: the TCP socket's error
            self.tcp.receive_icmp(pkt)
            return
        if pkt.proto != TCP:
            self._drop("no handler for protocol")
            return
        self.tcp.receive(pkt)

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1
