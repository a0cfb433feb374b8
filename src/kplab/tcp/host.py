"""`TcpHost`: a `TcpStack` bound to the simulator's clock, timers and a packet output.

Network side: call `receive(pkt)` for every TCP segment delivered locally; segments the stack
emits are handed to the `transmit(pkt)` callable given at construction (the host's output path).

Application side: `connect()` / `listen()` attach an application object implementing `TcpApp`;
it is called back with the connection, and uses `send()`, `read()` and `close()` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kplab.packet import Packet
from kplab.sim.scheduler import Scheduler
from kplab.tcp.conn import Connection
from kplab.tcp.listener import Listener
from kplab.tcp.stack import TcpStack
from kplab.tcp.state import TcpEvent


class TcpApp(Protocol):
    """Callbacks of an application socket. `conn.error` is an errno (0 = clean close)."""

    def on_connected(self, conn: Connection) -> None: ...

    def on_data(self, conn: Connection) -> None: ...

    def on_closed(self, conn: Connection) -> None: ...


AcceptFactory = Callable[[Connection], TcpApp]
# bound once: attribute access on an Enum class costs a descriptor call per use
_ACCEPTED, _DATA, _CONNECTED, _CLOSED = TcpEvent.ACCEPTED, TcpEvent.DATA, TcpEvent.CONNECTED, TcpEvent.CLOSED


class TcpHost:
    """Runs one `TcpStack` inside a `Scheduler`."""

    __slots__ = ("_busy", "_dirty", "_transmit", "sched", "stack")

    def __init__(self, sched: Scheduler, stack: TcpStack, transmit: Callable[[Packet], None]) -> None:
        self.sched = sched
        self.stack = stack
        self._transmit = transmit
        self._busy = False
        self._dirty: list[Connection] = []

    @property
    def counters(self) -> dict[str, int]:
        return self.stack.ctr.as_nstat()

    # ---- network side --------------------------------------------------------------------

    def receive(self, pkt: Packet) -> None:
        """A TCP segment for a local address arrived (after the node's INPUT path)."""
        conn = self.stack.input(pkt, self.sched.now_ns)
        self._settle(conn)

    def receive_icmp(self, pkt: Packet) -> None:
        """An ICMP error for a local address (destination unreachable quoting one of our segments)."""
        self._settle(self.stack.icmp_error(pkt, self.sched.now_ns))

    # ---- application side ----------------------------------------------------------------

    def connect(self, laddr: int, raddr: int, rport: int, app: TcpApp, lport: int = 0) -> Connection:
        conn = self.stack.connect(laddr, raddr, rport, self.sched.now_ns, app, lport)
        self._settle(conn)
        return conn

    def listen(self, addr: int, port: int, on_accept: AcceptFactory, backlog: int | None = None) -> Listener:
        return self.stack.listen(addr, port, on_accept, backlog)

    def send(self, conn: Connection, nbytes: int) -> None:
        self.stack.send(conn, nbytes, self.sched.now_ns)
        self._settle(conn)

    def read(self, conn: Connection, max_bytes: int) -> int:
        n = self.stack.read(conn, max_bytes, self.sched.now_ns)
        self._settle(conn)
        return n

    def close(self, conn: Connection) -> None:
        self.stack.close(conn, self.sched.now_ns)
        self._settle(conn)

    # ---- plumbing ------------------------------------------------------------------------

    def _on_timer(self, conn: Connection) -> None:
        now = self.sched.now_ns
        if conn.armed_ns != now:
            return  # superseded by an earlier deadline
        conn.armed_ns = 0
        self.stack.on_timer(conn, now)
        self._settle(conn)

    def _settle(self, conn: Connection | None) -> None:
        """Flush emitted segments, dispatch application events, re-arm timers.

        Re-entrant calls (an application reacting to an event, a transmit that delivers back
        synchronously) only note the connection; the outermost call does the work."""
        if self._busy:
            if conn is not None:
                self._note(conn)
            return
        stack = self.stack
        out = stack.out
        events = stack.events
        if out or events:
            self._busy = True
            try:
                self._drain(out, events)
            finally:
                self._busy = False
        if conn is not None:
            self._arm(conn)
        if self._dirty:
            dirty = self._dirty
            self._dirty = []
            if len(dirty) == 1:
                self._arm(dirty[0])
            else:
                for c in dict.fromkeys(dirty):  # deduplicated, in a deterministic order
                    self._arm(c)

    def _drain(self, out: list[Packet], events: list[tuple[TcpEvent, Connection]]) -> None:
        transmit = self._transmit
        while True:
            i = 0
            while i < len(out):  # a transmit may append more (synchronous delivery back)
                transmit(out[i])
                i += 1
            out.clear()
            if not events:
                return
            batch = events[:]
            events.clear()
            for kind, c in batch:
                self._dispatch(kind, c)

    def _note(self, conn: Connection) -> None:
        """Remember to re-arm `conn`'s timers (once: usually the same connection comes in a row)."""
        dirty = self._dirty
        if not dirty or dirty[-1] is not conn:
            dirty.append(conn)

    def _dispatch(self, kind: TcpEvent, conn: Connection) -> None:
        self._note(conn)
        if kind == _ACCEPTED:
            lst = conn.listener
            if lst is None or lst.app is None:
                return
            app: TcpApp = lst.app(conn)
            conn.app = app
            app.on_connected(conn)
            if conn.unread or conn.eof:
                app.on_data(conn)
            return
        app = conn.app
        if app is None:
            return
        if kind == _DATA:
            app.on_data(conn)
        elif kind == _CONNECTED:
            app.on_connected(conn)
        elif kind == _CLOSED:
            app.on_closed(conn)

    def _arm(self, conn: Connection) -> None:
        deadline = conn.next_timer_ns()
        armed = conn.armed_ns
        if deadline and (not armed or deadline < armed):
            deadline = max(deadline, self.sched.now_ns)
            conn.armed_ns = deadline
            self.sched.call_at(deadline, self._on_timer, conn)
