"""A file server: reads a request of `request_bytes`, answers `response_bytes`, then closes."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from kplab.tcp import Connection, TcpHost


@dataclass(slots=True)
class ServerStats:
    accepted: int = 0
    served: int = 0
    closed_clean: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class FileServer:
    """Listens on addr:port (addr 0 = any) of `host`."""

    def __init__(
        self, host: TcpHost, addr: int, port: int, response_bytes: int, request_bytes: int = 100
    ) -> None:
        self.host = host
        self.response_bytes = response_bytes
        self.request_bytes = request_bytes
        self.stats = ServerStats()
        host.listen(addr, port, self._accept)

    def _accept(self, conn: Connection) -> _Session:
        self.stats.accepted += 1
        return _Session(self)


class _Session:
    __slots__ = ("got", "responded", "server")

    def __init__(self, server: FileServer) -> None:
        self.server = server
        self.got = 0
        self.responded = False

    def on_connected(self, conn: Connection) -> None:
        pass

    def on_data(self, conn: Connection) -> None:
        server = self.server
        self.got += server.host.read(conn, conn.unread)
        if self.responded:
            return
        if self.got >= server.request_bytes:
            self.responded = True
            server.stats.served += 1
            server.host.send(conn, server.response_bytes)
            server.host.close(conn)
        elif conn.eof:
            self.responded = True
            server.host.close(conn)

    def on_closed(self, conn: Connection) -> None:
        stats = self.server.stats
        if conn.error:
            name = errno.errorcode.get(conn.error, str(conn.error))
            stats.errors[name] = stats.errors.get(name, 0) + 1
        else:
            stats.closed_clean += 1
