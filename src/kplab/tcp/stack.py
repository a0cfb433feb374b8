"""A host's TCP: the socket table (demultiplexing by 4-tuple, listeners by local address/port),
segments for no socket (`tcp_v4_send_reset`), connection setup, and the application calls.

Sans-IO: every call takes `now_ns`; segments to transmit accumulate in `out` and application
events in `events`, both drained by the caller (see `kplab.tcp.host.TcpHost` for the simulator
binding). Timers are deadlines on each connection (`Connection.next_timer_ns()`); when one is due
the caller calls `on_timer(conn, now_ns)`.
"""

from __future__ import annotations

import errno
import random
from typing import Any, Final

from kplab.packet import TCP, Packet
from kplab.tcp.config import TcpConfig
from kplab.tcp.conn import ACK, FIN, MASK, RST, SYN, Connection, unwrap
from kplab.tcp.counters import TcpCounters
from kplab.tcp.input import negotiate, segment_arrives
from kplab.tcp.listener import Listener
from kplab.tcp.output import probe_timer, push, retransmit_timer
from kplab.tcp.recv import read as recv_read
from kplab.tcp.state import TcpEvent, TcpState

Key = tuple[int, int, int, int]
_TIME_WAIT: Final = TcpState.TIME_WAIT  # bound once (Enum attribute access is slow)


ICMP_DEST_UNREACH: Final = 3
# icmp_err_convert: the codes that are fatal to an opening connection, and their errno.
_UNREACH_ERRNO: Final = {
    0: errno.ENETUNREACH,
    1: errno.EHOSTUNREACH,
    2: errno.ENOPROTOOPT,
    3: errno.ECONNREFUSED,
    9: errno.ENETUNREACH,
    10: errno.EHOSTUNREACH,
    13: errno.EHOSTUNREACH,
}


class TcpStack:
    """One host's (network namespace's) TCP endpoints and counters."""

    def __init__(self, cfg: TcpConfig, rng: random.Random) -> None:
        self.cfg = cfg
        self.rng = rng
        self.ctr = TcpCounters()
        self.out: list[Packet] = []
        self.events: list[tuple[TcpEvent, Connection]] = []
        self.conns: dict[Key, Connection] = {}
        self.listeners: dict[tuple[int, int], Listener] = {}
        self._port_offsets: dict[tuple[int, int, int], int] = {}  # per destination (table_perturb)
        self._challenge_window_ns = -1
        self._challenge_count = 0

    # ---- application calls ---------------------------------------------------------------

    def listen(self, addr: int, port: int, app: Any = None, backlog: int | None = None) -> Listener:
        """Listen on addr:port (addr 0 = any local address)."""
        if (addr, port) in self.listeners:
            raise ValueError(f"port {port} already has a listener")
        lst = Listener(addr, port, backlog or self.cfg.backlog, app)
        self.listeners[(addr, port)] = lst
        return lst

    def connect(
        self, laddr: int, raddr: int, rport: int, now_ns: int, app: Any = None, lport: int = 0
    ) -> Connection:
        """Active open: send a SYN from laddr (an ephemeral port unless `lport`)."""
        port = lport or self._ephemeral_port(laddr, raddr, rport)
        conn = Connection(self, laddr, port, raddr, rport, self.rng.getrandbits(32))
        conn.app = app
        conn.snd_nxt = conn.iss + 1
        conn.state = TcpState.SYN_SENT
        self.conns[conn.key] = conn
        self.ctr.ActiveOpens += 1
        conn.send_syn(with_ack=False)
        conn.rto_at = now_ns + conn.rto_ns
        return conn

    def send(self, conn: Connection, nbytes: int, now_ns: int) -> None:
        """Queue `nbytes` more bytes to send (the send buffer is unbounded)."""
        if conn.fin_queued or conn.state in (TcpState.CLOSE, TcpState.TIME_WAIT):
            raise ValueError(f"send on a closed socket {conn!r}")
        conn.write_end += nbytes
        push(conn, now_ns)

    def read(self, conn: Connection, max_bytes: int, now_ns: int) -> int:
        return recv_read(conn, max_bytes)

    def close(self, conn: Connection, now_ns: int) -> None:
        """`tcp_close`: FIN after the queued data; RST if unread data is left (TCPAbortOnClose)."""
        conn.app_closed = True
        state = conn.state
        if state in (TcpState.SYN_SENT, TcpState.SYN_RECV):
            conn.done(0)
            return
        if conn.unread and state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT1):
            self.ctr.TCPAbortOnClose += 1
            conn.send_active_reset("closed with unread data")
            conn.done(0)
            return
        if conn.fin_queued:
            return
        if state == TcpState.ESTABLISHED:
            conn.set_state(TcpState.FIN_WAIT1)
        elif state == TcpState.CLOSE_WAIT:
            conn.set_state(TcpState.LAST_ACK)
        else:
            return
        conn.fin_queued = True
        push(conn, now_ns)

    # ---- network side --------------------------------------------------------------------

    def input(self, pkt: Packet, now_ns: int) -> Connection | None:
        """A segment addressed to this host; returns the connection it touched, if any."""
        if pkt.proto != TCP:
            return None
        self.ctr.InSegs += 1
        conn = self.conns.get((pkt.dst, pkt.dport, pkt.src, pkt.sport))
        if conn is not None and (conn.state != _TIME_WAIT or not self._timewait_syn(conn, pkt)):
            segment_arrives(conn, pkt, now_ns)
            return conn
        lst = self.listeners.get((pkt.dst, pkt.dport)) or self.listeners.get((0, pkt.dport))
        if lst is not None:
            return self._listen_input(lst, pkt, now_ns)
        self.send_reset_for(pkt, "no socket: RST")
        return None

    def icmp_error(self, pkt: Packet, now_ns: int) -> Connection | None:
        """`tcp_v4_err` for ICMP destination unreachable quoting one of our segments: a hard error
        (port/protocol unreachable, administratively prohibited) aborts a connection that is still
        opening (SYN_SENT, SYN_RECV) with the matching errno; an established one only keeps it as
        a soft error, as Linux does without IP_RECVERR. Returns the connection it aborted."""
        inner = pkt.inner
        if pkt.icmp_type != ICMP_DEST_UNREACH or inner is None or inner.proto != TCP:
            return None
        conn = self.conns.get((inner.src, inner.sport, inner.dst, inner.dport))
        error = _UNREACH_ERRNO.get(pkt.icmp_code)
        if conn is None or error is None or conn.state not in (TcpState.SYN_SENT, TcpState.SYN_RECV):
            return None
        conn.done(error)
        return conn

    def on_timer(self, conn: Connection, now_ns: int) -> None:
        """Run whatever timers of `conn` are due at `now_ns`."""
        if conn.tw_at and now_ns >= conn.tw_at:
            if conn.state == TcpState.TIME_WAIT:
                self.ctr.TW += 1
            conn.done(0)
            return
        if conn.delack_at and now_ns >= conn.delack_at:
            conn.delack_at = 0
            self.ctr.DelayedACKs += 1
            conn.send_ack()
        if conn.rto_at and now_ns >= conn.rto_at:
            conn.rto_at = 0
            retransmit_timer(conn, now_ns)
            push(conn, now_ns)
        if conn.persist_at and now_ns >= conn.persist_at:
            conn.persist_at = 0
            probe_timer(conn, now_ns)

    def send_reset_for(self, pkt: Packet, note: str = "") -> None:
        """`tcp_v4_send_reset` (RFC 9293 3.10.7.1): never answer a RST; if the segment has ACK,
        RST with SEQ = SEG.ACK; otherwise RST|ACK with SEQ = 0, ACK = SEG.SEQ + SEG.LEN."""
        flags = pkt.flags
        if flags & RST:
            return
        if flags & ACK:
            rst = Packet(pkt.dst, pkt.src, TCP, pkt.dport, pkt.sport, RST, pkt.ack, 0, 0, 0)
        else:
            seg_len = pkt.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            ack = (pkt.seq + seg_len) & MASK
            rst = Packet(pkt.dst, pkt.src, TCP, pkt.dport, pkt.sport, RST | ACK, 0, ack, 0, 0)
        if note:
            rst.notes.append(note)
        self.ctr.OutRsts += 1
        self.ctr.OutSegs += 1
        self.out.append(rst)

    def challenge_ack_allowed(self, now_ns: int) -> bool:
        """The per-host `tcp_challenge_ack_limit` per second (unlimited since v6.0: INT_MAX)."""
        limit = self.cfg.challenge_ack_limit
        if limit >= 2**31 - 1:
            return True
        window = now_ns // 1_000_000_000
        if window != self._challenge_window_ns:
            self._challenge_window_ns = window
            self._challenge_count = 0
        if self._challenge_count >= limit:
            return False
        self._challenge_count += 1
        return True

    # ---- internals -----------------------------------------------------------------------

    def unhash(self, conn: Connection) -> None:
        if self.conns.get(conn.key) is conn:
            del self.conns[conn.key]
        if conn.listener is not None and conn.in_backlog:
            conn.listener.pending -= 1
            conn.in_backlog = False

    def accepted(self, conn: Connection) -> None:
        """A passive open completed: hand it to the listener's application."""
        lst = conn.listener
        if lst is not None and conn.in_backlog:
            lst.pending -= 1
            conn.in_backlog = False
        self.events.append((TcpEvent.ACCEPTED, conn))

    def _timewait_syn(self, tw: Connection, pkt: Packet) -> bool:
        """A SYN beyond RCV.NXT reuses the 4-tuple (TCP_TW_SYN); True if TIME_WAIT was recycled."""
        if pkt.flags & (SYN | ACK | RST) != SYN or unwrap(pkt.seq, tw.rcv_nxt) <= tw.rcv_nxt:
            return False
        tw.done(0)
        return True

    def _listen_input(self, lst: Listener, pkt: Packet, now_ns: int) -> Connection | None:
        """`tcp_v4_conn_request` path: SYN -> SYN_RECV child and SYN-ACK; ACK -> RST; RST dropped."""
        flags = pkt.flags
        if flags & RST:
            return None
        if flags & ACK:
            self.send_reset_for(pkt, "no connection for ACK at listener: RST")
            return None
        if not flags & SYN:
            return None
        if lst.pending >= lst.backlog:
            self.ctr.ListenOverflows += 1
            self.ctr.ListenDrops += 1
            return None
        conn = Connection(self, pkt.dst, pkt.dport, pkt.src, pkt.sport, self.rng.getrandbits(32))
        conn.listener = lst
        conn.in_backlog = True
        lst.pending += 1
        conn.state = TcpState.SYN_RECV
        negotiate(conn, pkt)
        conn.rcv_nxt = conn.rcv_wup = pkt.seq + 1
        conn.snd_nxt = conn.iss + 1
        self.conns[conn.key] = conn
        conn.send_syn(with_ack=True)
        conn.rto_at = now_ns + conn.rto_ns
        return conn

    def _ephemeral_port(self, laddr: int, raddr: int, rport: int) -> int:
        """`__inet_hash_connect`: from a per-destination offset, ports of even parity first (then
        odd), in steps of two; the next connect to the same destination starts 2..16 further."""
        low, high = self.cfg.port_low, self.cfg.port_high
        span = high - low + 1
        dest = (laddr, raddr, rport)
        offset = self._port_offsets.get(dest)
        if offset is None:
            offset = self.rng.randrange(span)
        for parity in (0, 1):
            start = (offset & ~1) | parity
            for step in range(0, span, 2):
                port = low + (start + step) % span
                if (laddr, port, raddr, rport) not in self.conns and (laddr, port) not in self.listeners:
                    self._port_offsets[dest] = start + step + 2 + 2 * self.rng.randrange(8)
                    return port
        raise OSError("EADDRNOTAVAIL: no free local port")
