"""Causes that can make a returning packet escape the Service's reverse NAT, as scenario faults.

Each cause acts once, in the middle of the download (when the client has received
`TRIGGER_BYTES`), on the live connection: a crafted segment sent from the server pod (as a raw
socket would send it: correct addresses, sequence numbers chosen relative to what the client
node's conntrack has seen), or a change to the client node's conntrack table. What follows is not
scripted: the node, the rules and both TCP stacks decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kplab.net.cluster import EmulatedCluster
from kplab.netfilter.conntrack import Conntrack, Entry
from kplab.netfilter.ctview import FiveTuple
from kplab.packet import TCP, Packet, TcpFlags
from kplab.tcp import Connection

TRIGGER_BYTES = 1_000_000
POLL_NS = 200_000
MOD = 1 << 32
ACK, PSH, SYN = int(TcpFlags.ACK), int(TcpFlags.PSH), int(TcpFlags.SYN)


@dataclass(frozen=True, slots=True)
class Cause:
    id: str
    title: str
    apply: Callable[[Stage], None]
    loose: int = 1  # nf_conntrack_tcp_loose on the client node for this row


@dataclass(slots=True)
class Stage:
    """The live connection at the moment the cause acts."""

    cluster: EmulatedCluster
    client: Connection  # the client pod's socket (to the Service IP)
    server: Connection  # the backend pod's socket (to the client's own address)
    entry: Entry  # the client node's conntrack entry for the connection

    @property
    def server_side(self) -> tuple[int, int]:
        """(td_end, td_maxend) of the server's direction, as the client node's conntrack has them."""
        side = self.entry.side(1)
        return side.td_end, side.td_maxend

    @property
    def client_maxwin(self) -> int:
        return self.entry.side(0).td_maxwin

    def send_from_server(self, seq: int, ack: int, length: int, flags: int = ACK | PSH) -> None:
        s = self.server
        pkt = Packet(s.laddr, s.raddr, TCP, s.lport, s.rport, flags, seq % MOD, ack % MOD,
                     min(s.rcv_wnd >> s.rcv_wscale, 0xFFFF), length)  # fmt: skip
        self.cluster.pods["server-1"].inject(pkt)


def old_duplicate(st: Stage) -> None:
    """Data the client acknowledged long ago, more than its window below what was sent since."""
    td_end, _ = st.server_side
    st.send_from_server(td_end - st.client_maxwin - 2 * 1460, st.server.rcv_nxt, 1460)


def regression_forged(st: Stage) -> None:
    """The upstream regression test (regression-issue-74839): PSH|ACK, seq = ack - 100000, 'boom!!!'."""
    st.send_from_server(st.client.rcv_nxt - 100_000, st.server.rcv_nxt, 7)


def beyond_window(overshoot_windows: int) -> Callable[[Stage], None]:
    def apply(st: Stage) -> None:
        """Data that starts beyond the right edge the client advertised."""
        _, td_maxend = st.server_side
        st.send_from_server(td_maxend + 1 + overshoot_windows * st.client_maxwin, st.server.rcv_nxt, 1000)

    return apply


def ack_unseen(st: Stage) -> None:
    """An ACK for client data conntrack has not seen yet (ACK over the upper bound)."""
    st.send_from_server(st.server.snd_nxt, st.server.rcv_nxt + 100_000, 0, ACK)


def delayed_ack(st: Stage) -> None:
    """An ACK far older than any the client still expects (ACK under the lower bound)."""
    maxackwindow = max(st.entry.side(1).td_maxwin, 66_000)
    st.send_from_server(st.server.snd_nxt, st.server.rcv_nxt - maxackwindow - 1000, 0, ACK)


def _before_next(st: Stage, next_sender: str, action: Callable[[], None]) -> None:
    """Run `action` just before the next packet of `next_sender` reaches the client node."""
    node = st.cluster.nodes["node-a"]
    orig = st.entry.orig
    sender = (orig.src, orig.sport) if next_sender == "client" else (st.server.laddr, st.server.lport)

    def hook(pkt: Packet, in_iface: str) -> None:
        if (pkt.src, pkt.sport) == sender:
            node.on_arrival.remove(hook)
            action()

    node.on_arrival.append(hook)


def entry_lost(next_sender: str) -> Callable[[Stage], None]:
    def apply(st: Stage) -> None:
        """The client node's entry disappears just before the next packet of `next_sender` arrives."""
        ct = st.cluster.nodes["node-a"].ct

        def lose() -> None:
            ct.delete(st.entry.orig)

        _before_next(st, next_sender, lose)

    return apply


def table_full(assured: bool) -> Callable[[Stage], None]:
    def apply(st: Stage) -> None:
        """Other flows fill the table (nf_conntrack_max) and the live entry is lost, just before the
        server's next packet arrives."""
        ct = st.cluster.nodes["node-a"].ct

        def fill_and_lose() -> None:
            limit = len(ct) + 62
            ct.set_sysctl("nf_conntrack_max", limit)
            ct.delete(st.entry.orig)
            port = 1024
            while len(ct) < limit:  # the freed slot is taken too: the table stays full
                _filler(ct, port, assured, st.cluster.sched.now_ns)
                port += 1

        _before_next(st, "server", fill_and_lose)

    return apply


def _filler(ct: Conntrack, port: int, assured: bool, now: int) -> None:
    """Another client's flow through this node: a SYN, or a whole handshake (ASSURED)."""
    client, server = 0x0A0000FE, 0x0A0001FE  # 10.0.0.254 -> 10.0.1.254
    steps = [Packet(client, server, TCP, port, 80, SYN, 1000, 0, 65535)]
    if assured:
        steps += [
            Packet(server, client, TCP, 80, port, SYN | ACK, 5000, 1001, 65535),
            Packet(client, server, TCP, port, 80, ACK, 1001, 5001, 65535),
        ]
    for pkt in steps:
        res = ct.lookup(pkt, "PREROUTING", now)
        if res.entry is not None:
            ct.bind_nat(res, None, "PREROUTING")
            ct.bind_nat(res, None, "POSTROUTING")
            ct.confirm(res, now)


CAUSES: tuple[Cause, ...] = (
    Cause("old-duplicate", "old duplicate below the window", old_duplicate),
    Cause("beyond-window-small", "data beyond the client's window (small overshoot)", beyond_window(0)),
    Cause("beyond-window-large", "data beyond the client's window (large overshoot)", beyond_window(4)),
    Cause("ack-unseen", "ACK of data not yet seen", ack_unseen),
    Cause("delayed-ack", "very delayed ACK", delayed_ack),
    Cause("lost-client-next-loose1", "entry lost, client sends next, loose=1", entry_lost("client"), 1),
    Cause("lost-client-next-loose0", "entry lost, client sends next, loose=0", entry_lost("client"), 0),
    Cause("lost-server-next-loose1", "entry lost, server sends next, loose=1", entry_lost("server"), 1),
    Cause("lost-server-next-loose0", "entry lost, server sends next, loose=0", entry_lost("server"), 0),
    Cause("table-full-unassured", "table full, non-ASSURED fillers, entry lost", table_full(False)),
    Cause("table-full-assured", "table full, ASSURED fillers, entry lost", table_full(True)),
    Cause("regression-74839", "upstream regression test: seq = ack - 100000", regression_forged),
)


def arm(cluster: EmulatedCluster, cause: Cause) -> None:
    """Apply `cause` once the client has received TRIGGER_BYTES of the download."""
    sched = cluster.sched

    def poll() -> None:
        downloads = [d for w in cluster.workloads.get("client-1", []) for d in w.downloads]
        stage = _stage(cluster) if downloads and downloads[0].received >= TRIGGER_BYTES else None
        if stage is None:
            sched.call_later(POLL_NS, poll)
            return
        cause.apply(stage)

    sched.call_later(POLL_NS, poll)


def _stage(cluster: EmulatedCluster) -> Stage | None:
    client_pod, server_pod = cluster.pods["client-1"], cluster.pods["server-1"]
    clients = list(client_pod.tcp.stack.conns.values())
    servers = list(server_pod.tcp.stack.conns.values())
    if not clients or not servers:
        return None
    client, server = clients[0], servers[0]
    node = cluster.nodes[client_pod.node]
    entry = node.ct.find(FiveTuple(client.laddr, client.raddr, TCP, client.lport, client.rport))
    if entry is None or entry.proto != TCP:
        return None
    return Stage(cluster, client, server, entry)
