"""Linux-like TCP endpoints, sans-IO (`TcpStack`), and their simulator binding (`TcpHost`)."""

from kplab.tcp.config import TcpConfig, window_scale_for
from kplab.tcp.conn import Connection
from kplab.tcp.counters import TcpCounters
from kplab.tcp.host import TcpApp, TcpHost
from kplab.tcp.stack import Listener, TcpStack
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
