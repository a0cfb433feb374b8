"""A listening socket: where passive opens wait for their application."""

from __future__ import annotations

from typing import Any


class Listener:
    """A listening socket. `app` is what the embedding layer attaches (e.g. an accept factory)."""

    __slots__ = ("addr", "app", "backlog", "pending", "port")

    def __init__(self, addr: int, port: int, backlog: int, app: Any) -> None:
        self.addr = addr
        self.port = port
        self.backlog = backlog
        self.app = app
        self.pending = 0  # connections in SYN_RECV
