"""Learn a live TCP flow's sequence space by sniffing it, and inject crafted segments into it.

`FlowSniffer` reads an AF_PACKET socket opened inside the server pod's namespace (a thread of its
own) and keeps, for the newest connection to the server port, what the client node's conntrack
keeps for it: each side's highest end, the right edge the client advertised (`td_maxend` of the
server's direction), the largest windows, the window scales. `Injector` sends crafted segments
(`kplab.packet.codec`: correct IP and TCP checksums) from a raw socket in the same namespace.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import threading
from dataclasses import dataclass, replace

from kplab.lab.inside import inside
from kplab.lab.netns import Netns
from kplab.packet import TCP, Packet, TcpFlags, codec

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
MOD = 1 << 32
SYN, ACK, FIN, RST = int(TcpFlags.SYN), int(TcpFlags.ACK), int(TcpFlags.FIN), int(TcpFlags.RST)


@dataclass(frozen=True, slots=True)
class FlowView:
    """One connection, as seen at the server pod. Sequence numbers are absolute (mod 2**32)."""

    client: int
    client_port: int
    server: int
    server_port: int
    server_isn: int
    server_end: int  # td_end of the server's direction: highest seq + len sent by the server
    server_maxend: int  # td_maxend of the server's direction: highest client ack + scaled window
    client_end: int  # the server's rcv_nxt: highest seq + len sent by the client
    client_ack: int  # the client's rcv_nxt: highest ack the client sent
    client_maxwin: int  # td_maxwin of the client's direction
    server_maxwin: int  # td_maxwin of the server's direction
    server_win: int  # the server's last raw window field
    packets: int

    @property
    def received(self) -> int:
        """Bytes the client has acknowledged."""
        return max(0, (self.client_ack - self.server_isn - 1) % MOD)


def _after(a: int, b: int) -> bool:
    return 0 < (a - b) % MOD < MOD // 2


class FlowSniffer:
    def __init__(self, ns: Netns, ifname: str, server_port: int) -> None:
        with inside(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, ETH_P_ALL))
        self.port = server_port
        self.lock = threading.Lock()
        self.view: FlowView | None = None
        self._wscale = (0, 0)  # (client, server) once both SYNs carried one
        self._pending: dict[str, int] = {}
        self.server_packets = 0  # every packet the server sent so far, all flows (a clock for bursts)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()

    def reset(self) -> None:
        """Forget the flow seen so far (the next SYN to the server port starts a new one)."""
        with self.lock:
            self.view = None
            self._pending = {}

    def current(self) -> FlowView | None:
        with self.lock:
            return self.view

    def idle(self) -> bool:
        """True when every packet the socket has caught so far is in the view (none waits to be read:
        a packet is taken and seen under the lock this reads under)."""
        with self.lock:
            waiting: int = struct.unpack("i", fcntl.ioctl(self.sock, termios.FIONREAD, b"\0" * 4))[0]
        return waiting == 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.1)
                if not ready:
                    continue
                with self.lock:
                    data = self.sock.recv(65535, socket.MSG_DONTWAIT)
                    if len(data) >= 40 and data[9] == TCP:
                        self._see(codec.decode(data))
            except BlockingIOError:
                continue
            except OSError:
                return

    def _see(self, p: Packet) -> None:
        to_server = p.dport == self.port
        if not to_server and p.sport != self.port:
            return
        if not to_server:
            self.server_packets += 1
        if p.flags & SYN and not p.flags & ACK and to_server:
            self._pending = {"wscale": -1 if p.wscale is None else p.wscale, "win": p.win}
            self.view = None
            return
        if p.flags & SYN and p.flags & ACK and not to_server and self._pending:
            both = self._pending["wscale"] >= 0 and p.wscale is not None
            self._wscale = (self._pending["wscale"], p.wscale or 0) if both else (0, 0)
            self.view = FlowView(p.dst, p.dport, p.src, p.sport, p.seq, (p.seq + 1) % MOD,
                                 (p.seq + 1 + self._pending["win"]) % MOD, p.ack, p.seq + 1,
                                 self._pending["win"], p.win, p.win, 1)  # fmt: skip
            return
        v = self.view
        if v is None or p.flags & RST:
            return
        end = (p.seq + p.length + (1 if p.flags & FIN else 0)) % MOD
        if to_server:
            win = p.win << self._wscale[0]
            edge = (p.ack + win) % MOD
            self.view = replace(v, client_end=end if _after(end, v.client_end) else v.client_end,
                                client_ack=p.ack if _after(p.ack, v.client_ack) else v.client_ack,
                                server_maxend=edge if _after(edge, v.server_maxend) else v.server_maxend,
                                client_maxwin=max(v.client_maxwin, win), packets=v.packets + 1)  # fmt: skip
        else:
            win = p.win << self._wscale[1]
            self.view = replace(v, server_end=end if _after(end, v.server_end) else v.server_end,
                                server_maxwin=max(v.server_maxwin, win), server_win=p.win,
                                packets=v.packets + 1)  # fmt: skip


class Injector:
    """Crafted segments from the server pod (a raw socket: the pod's own TCP never sees them)."""

    def __init__(self, ns: Netns) -> None:
        with inside(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def close(self) -> None:
        self.sock.close()

    def send_from_server(self, v: FlowView, seq: int, ack: int, length: int, flags: int) -> Packet:
        pkt = Packet(v.server, v.client, TCP, v.server_port, v.client_port, flags, seq % MOD, ack % MOD,
                     v.server_win, length)  # fmt: skip
        self.sock.sendto(codec.encode(pkt), (socket.inet_ntoa(struct.pack("!I", v.client)), 0))
        return pkt
