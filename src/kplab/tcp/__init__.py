"""Linux-like TCP endpoints, sans-IO (`TcpStack`), and their simulator binding (`TcpHost`).

Theory of operation
-------------------
`TcpStack` is one network namespace's TCP: a socket table (4-tuple -> `Connection`, listeners by
(addr, port), addr 0 = any) and nstat-named counters (`stack.ctr`, `ctr.as_nstat()`). It does no
I/O and reads no clock: every call takes `now_ns`; segments to send accumulate in `stack.out`,
application events (`TcpEvent`) in `stack.events`; each connection exposes its next timer
deadline (`next_timer_ns()`), and the caller runs `stack.on_timer(conn, now_ns)` when it is due.

`TcpHost(sched, stack, transmit)` binds a stack to the `Scheduler`: `host.receive(pkt)` feeds a
delivered segment in, every emitted segment goes to `transmit(pkt)`, timers are scheduled, and
applications (`TcpApp`: on_connected / on_data / on_closed) attach with `host.connect(...)` and
`host.listen(addr, port, on_accept)` and act with `host.send/read/close`.

Segment handling, in the kernel's order (`tcp_rcv_state_process`):
    no socket              -> RST (SEQ=SEG.ACK) or RST|ACK (ACK=SEG.SEQ+SEG.LEN); never for a RST
    LISTEN   + SYN         -> SYN_RECV child, SYN-ACK (MSS, window scale, SACK-permitted)
    LISTEN   + ACK         -> RST;  + RST -> dropped
    SYN_SENT + SYN-ACK     -> ESTABLISHED (CONNECTED);  + RST with acceptable ACK -> ECONNREFUSED
    SYN_RECV + ACK of ISS  -> ESTABLISHED (ACCEPTED)
    synchronized: sequence check (`tcp_sequence`) -> RST / SYN rules (RFC 5961) -> ACK (`tcp_ack`:
        window, SACK, RTT, recovery, cwnd) -> data and FIN (`tcp_data_queue`) -> send / ACK now or
        delayed
    ESTABLISHED --close--> FIN_WAIT1 --ACK--> FIN_WAIT2 --FIN--> TIME_WAIT --60 s--> CLOSE
    ESTABLISHED --FIN--> CLOSE_WAIT --close--> LAST_ACK --ACK--> CLOSE
    FIN_WAIT1 --FIN--> CLOSING --ACK--> TIME_WAIT
    RST accepted: ECONNRESET (EPIPE in CLOSE_WAIT), TcpEstabResets from ESTABLISHED/CLOSE_WAIT
    retransmission timeouts: ETIMEDOUT after tcp_retries2 (tcp_model_timeout, ~924.6 s) or
        tcp_syn_retries (127 s)
"""

from kplab.tcp.config import TcpConfig, window_scale_for
from kplab.tcp.conn import Connection
from kplab.tcp.counters import TcpCounters
from kplab.tcp.host import TcpApp, TcpHost
from kplab.tcp.listener import Listener
from kplab.tcp.stack import TcpStack
from kplab.tcp.state import ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, TcpEvent, TcpState

__all__ = [
    "ECONNREFUSED",
    "ECONNRESET",
    "EPIPE",
    "ETIMEDOUT",
    "Connection",
    "Listener",
    "TcpApp",
    "TcpConfig",
    "TcpCounters",
    "TcpEvent",
    "TcpHost",
    "TcpStack",
    "TcpState",
    "window_scale_for",
]
