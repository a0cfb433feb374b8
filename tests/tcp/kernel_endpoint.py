"""Drive a real Linux TCP endpoint and a kplab `TcpStack` with the same crafted segments.

Kernel side: two lab namespaces joined by a veth. "host" (10.9.0.1) runs a real listening socket
on port 80; "peer" (10.9.0.2) sends segments from a raw socket and reads the answers from an
AF_PACKET socket; its own TCP stack is silenced (INPUT drops TCP) so it never answers. TCP
timestamps are off in "host" (kplab does not model them). Sockets are opened inside the
namespaces with setns(2) on this thread.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import time

from kplab.lab.inside import inside
from kplab.lab.netns import Lab
from kplab.packet import Packet, codec, ip
from kplab.tcp import Connection, TcpConfig, TcpStack, TcpState, window_scale_for

HOST = ip("10.9.0.1")
PEER = ip("10.9.0.2")
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
TCP_INFO_STATE_CLOSE = 7


class KernelEndpoint:
    """The real kernel as the endpoint under test."""

    def __init__(self, lab: Lab) -> None:
        self.host = lab.netns("host")
        self.peer = lab.netns("peer")
        lab.veth(self.peer, "p0", self.host, "h0")
        self.peer.run(["ip", "addr", "add", "10.9.0.2/24", "dev", "p0"])
        self.host.run(["ip", "addr", "add", "10.9.0.1/24", "dev", "h0"])
        self.peer.run(["iptables", "-A", "INPUT", "-p", "tcp", "-j", "DROP"])
        self.host.sysctl("net.ipv4.tcp_timestamps", 0)
        with inside(self.peer):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
            self.rx.bind(("p0", ETH_P_IP))
            self.rx.setblocking(False)
        with inside(self.host):
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.bind(("10.9.0.1", 80))
            self.listener.listen(64)
            self.listener.setblocking(False)
        self.accepted: dict[int, socket.socket] = {}

    def window_scale(self) -> int:
        """The shift this kernel offers, from its sysctls (`window_scale_for`)."""
        with inside(self.host):
            with open("/proc/sys/net/ipv4/tcp_rmem") as f:
                tcp_rmem_max = int(f.read().split()[2])
            with open("/proc/sys/net/core/rmem_max") as f:
                rmem_max = int(f.read())
        return window_scale_for(tcp_rmem_max, rmem_max)

    def close(self) -> None:
        for sock in (self.tx, self.rx, self.listener, *self.accepted.values()):
            sock.close()

    def send(self, pkt: Packet, wait_s: float = 0.25) -> list[Packet]:
        """Inject one segment; every TCP segment the host sends back within `wait_s`."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.rx.recvfrom(65535)
        self.tx.sendto(codec.encode(pkt), ("10.9.0.1", 0))
        got: list[Packet] = []
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.rx], [], [], left)
            if not ready:
                break
            data, addr = self.rx.recvfrom(65535)
            if addr[2] != PACKET_OUTGOING and len(data) >= 20 and data[9] == 6:
                got.append(codec.decode(data))
        return got

    def state(self, peer_port: int) -> tuple[str, int]:
        """(ESTABLISHED or CLOSE, pending socket error) of the accepted socket for this port."""
        sock = self.accepted.get(peer_port)
        if sock is None:
            sock = self._accept(peer_port)
        tcp_state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return ("CLOSE" if tcp_state == TCP_INFO_STATE_CLOSE else "ESTABLISHED"), error

    def _accept(self, peer_port: int) -> socket.socket:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            select.select([self.listener], [], [], 0.1)
            with contextlib.suppress(BlockingIOError):
                sock, (_addr, port) = self.listener.accept()
                self.accepted[port] = sock
                if port == peer_port:
                    return sock
        raise AssertionError(f"the kernel never accepted the connection from port {peer_port}")


class KplabEndpoint:
    """kplab's `TcpStack` as the endpoint under test (same addresses and listener)."""

    def __init__(self, wscale: int) -> None:
        self.stack = TcpStack(TcpConfig(wscale=wscale), random.Random(7))
        self.stack.listen(HOST, 80)
        self.now_ns = 0
        self.seen: dict[int, Connection] = {}

    def send(self, pkt: Packet, wait_s: float = 0.25) -> list[Packet]:
        self.now_ns += int(wait_s * 1e9)  # the kernel side waits that long for answers
        self.stack.input(pkt, self.now_ns)
        conn = self.stack.conns.get((HOST, 80, PEER, pkt.sport))
        if conn is not None:
            self.seen.setdefault(pkt.sport, conn)
        out = self.stack.out[:]
        self.stack.out.clear()
        return out

    def state(self, peer_port: int) -> tuple[str, int]:
        conn = self.seen[peer_port]
        return ("CLOSE" if conn.state == TcpState.CLOSE else "ESTABLISHED"), conn.error


class KernelClient:
    """The kernel as the connecting side: a non-blocking connect() from "host" to the peer, whose
    answers are crafted. Shares the namespaces and sockets of a `KernelEndpoint`."""

    def __init__(self, ep: KernelEndpoint) -> None:
        self.ep = ep
        self.sockets: list[socket.socket] = []

    def connect(self, port: int) -> tuple[socket.socket, Packet]:
        """connect() to the peer's `port`; returns the socket and the SYN the kernel sent."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.ep.rx.recvfrom(65535)
        with inside(self.ep.host):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sockets.append(sock)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("10.9.0.2", port))
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.ep.rx], [], [], 0.1)
            if ready:
                data, addr = self.ep.rx.recvfrom(65535)
                if addr[2] != PACKET_OUTGOING and len(data) >= 20 and data[9] == 6:
                    return sock, codec.decode(data)
        raise AssertionError("the kernel sent no SYN")

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
