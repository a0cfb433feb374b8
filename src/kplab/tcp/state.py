"""TCP states (kernel numbering, include/net/tcp_states.h), app events and errno values."""

from __future__ import annotations

import errno
from enum import IntEnum


class TcpState(IntEnum):
    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECV = 3
    FIN_WAIT1 = 4
    FIN_WAIT2 = 5
    TIME_WAIT = 6
    CLOSE = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11


class CaState(IntEnum):
    """Congestion-avoidance state (`icsk_ca_state`)."""

    OPEN = 0
    DISORDER = 1
    CWR = 2
    RECOVERY = 3
    LOSS = 4


class TcpEvent(IntEnum):
    """What an application is told (drained from `TcpStack.events`)."""

    CONNECTED = 1  # active open completed
    ACCEPTED = 2  # passive open completed (the listener hands the connection to its app)
    DATA = 3  # new in-order bytes to read, or end of stream (`conn.eof`)
    CLOSED = 4  # the socket is closed; `conn.error` is 0 or an errno


ECONNRESET = errno.ECONNRESET
ETIMEDOUT = errno.ETIMEDOUT
ECONNREFUSED = errno.ECONNREFUSED
EPIPE = errno.EPIPE

# states in which the peer's sequence space is synchronized
SYNCHRONIZED = frozenset(
    {
        TcpState.SYN_RECV,
        TcpState.ESTABLISHED,
        TcpState.FIN_WAIT1,
        TcpState.FIN_WAIT2,
        TcpState.CLOSE_WAIT,
        TcpState.CLOSING,
        TcpState.LAST_ACK,
    }
)
# states where in-order data is accepted
RECEIVING = frozenset({TcpState.ESTABLISHED, TcpState.FIN_WAIT1, TcpState.FIN_WAIT2})
# states where our send queue is pushed
SENDING = frozenset(
    {TcpState.ESTABLISHED, TcpState.CLOSE_WAIT, TcpState.FIN_WAIT1, TcpState.CLOSING, TcpState.LAST_ACK}
)
