"""The lab's applications, run inside pod namespaces with `ip netns exec NS python -m kplab.lab.apps`.

- `server`: the emulator's file server on real sockets: read a request of `--request-bytes`, send
  `--file-bytes`, half-close, wait for the client's close. A RST at any point is what the
  application sees as ECONNRESET/EPIPE; the stats file is rewritten after every connection.
- `client`: `--parallel` lanes, each `--downloads` downloads one after another, reading at
  `--read-rate` bit/s (0: as fast as data arrives). Each download ends completed, reset, timed
  out, refused, incomplete, or `running` when it made no progress for `--stall` seconds (the
  emulator's "stalled"). Results go to `--out` as JSON when every lane is done. `--keepalive S`
  makes an idle client speak again after S seconds (TCP keepalive), as a reading client would.
  `--pause-at B` stops the client process (SIGSTOP to itself) once its first download has read B
  bytes: the flow stands still there (its window closes) until the lab continues it (SIGCONT),
  however long a loaded machine makes the lab take. Time the client did not run (stopped, or not
  scheduled) is neither "no progress" nor reading time: a paused client is not a stalled one.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

CHUNK = 65536
OUTCOMES = {errno.ECONNRESET: "reset", errno.EPIPE: "reset", errno.ETIMEDOUT: "timed out",
            errno.ECONNREFUSED: "refused"}  # fmt: skip
# The read loop comes round at least every recv timeout (50 ms): a longer gap is time it did not run.
GAP_S = 0.25


def _write_json(path: str, data: object) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.stats: dict[str, Any] = {"accepted": 0, "served": 0, "closed_clean": 0, "errors": {}}

    def serve(self) -> None:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((self.args.addr, self.args.port))
        lsock.listen(128)
        self._save()
        while True:
            conn, _ = lsock.accept()
            with self.lock:
                self.stats["accepted"] += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        result = "closed_clean"
        try:
            got = 0
            while got < self.args.request_bytes:
                data = conn.recv(CHUNK)
                if not data:
                    break
                got += len(data)
            block = b"x" * CHUNK
            left = self.args.file_bytes
            while left > 0:
                left -= conn.send(block[: min(left, CHUNK)])
            with self.lock:
                self.stats["served"] += 1
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(self.args.linger)
            while conn.recv(CHUNK):
                pass
        except OSError as exc:
            result = errno.errorcode.get(exc.errno or 0, "timeout") if exc.errno else "timeout"
        finally:
            conn.close()
        with self.lock:
            if result == "closed_clean":
                self.stats["closed_clean"] += 1
            else:
                self.stats["errors"][result] = self.stats["errors"].get(result, 0) + 1
            self._save()

    def _save(self) -> None:
        _write_json(self.args.out, self.stats)


def _download(args: argparse.Namespace, index: int) -> dict[str, Any]:
    host, port = args.target.rsplit(":", 1)
    record: dict[str, Any] = {"index": index, "received": 0, "outcome": "running", "local_port": 0}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    if args.keepalive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, args.keepalive)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, args.keepalive)
    sock.settimeout(0.05)
    started = time.monotonic()
    try:
        sock.settimeout(args.stall)
        sock.connect((host, int(port)))
        record["local_port"] = sock.getsockname()[1]
        sock.sendall(b"g" * args.request_bytes)
        record["outcome"] = _read(sock, args, record, started)
    except TimeoutError:
        record["outcome"] = "running"
    except OSError as exc:
        record["outcome"] = OUTCOMES.get(exc.errno or 0, f"error {exc.errno}")
    finally:
        sock.close()
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def _read(sock: socket.socket, args: argparse.Namespace, record: dict[str, Any], started: float) -> str:
    """Read the whole file at the application's rate; the outcome a socket application sees."""
    rate = args.read_rate / 8 if args.read_rate else 0.0
    last_progress = beat = time.monotonic()
    origin, deadline = started, started + args.deadline
    sock.settimeout(0.05)
    while record["received"] < args.file_bytes:
        now = time.monotonic()
        gap = now - beat if now - beat > GAP_S else 0.0  # stopped or not scheduled: does not count
        last_progress, origin, deadline, beat = last_progress + gap, origin + gap, deadline + gap, now
        if now - last_progress > args.stall or now > deadline:
            return "running"
        if rate and record["received"] > rate * (now - origin):
            time.sleep(min(0.002, record["received"] / rate - (now - origin)))
            continue
        try:
            data = sock.recv(min(CHUNK, 16384) if rate else CHUNK)
        except TimeoutError:
            continue
        if not data:
            return "incomplete"
        record["received"] += len(data)
        last_progress = time.monotonic()
        if record["index"] == 0 and record["received"] - len(data) < args.pause_at <= record["received"]:
            os.kill(os.getpid(), signal.SIGSTOP)  # until the lab's SIGCONT
    return "completed"


def client(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def lane(lane_index: int, delay: float) -> None:
        time.sleep(delay)
        for i in range(args.downloads):
            record = _download(args, lane_index * args.downloads + i)
            with lock:
                results.append(record)

    threads = [threading.Thread(target=lane, args=(k, rng.uniform(0, args.spread)))
               for k in range(args.parallel)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _write_json(args.out, sorted(results, key=lambda r: r["index"]))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kplab.lab.apps")
    sub = p.add_subparsers(dest="app", required=True)
    s = sub.add_parser("server")
    s.add_argument("--addr", default="0.0.0.0")
    s.add_argument("--port", type=int, default=80)
    s.add_argument("--file-bytes", type=int, required=True)
    s.add_argument("--request-bytes", type=int, default=100)
    s.add_argument("--linger", type=float, default=30.0)
    s.add_argument("--out", required=True)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--file-bytes", type=int, required=True)
    c.add_argument("--request-bytes", type=int, default=100)
    c.add_argument("--parallel", type=int, default=1)
    c.add_argument("--downloads", type=int, default=1)
    c.add_argument("--read-rate", type=int, default=0)
    c.add_argument("--rcvbuf", type=int, default=0)
    c.add_argument("--keepalive", type=int, default=0, help="TCP keepalive idle/interval seconds (0: off)")
    c.add_argument("--pause-at", type=int, default=0, help="stop (SIGSTOP) once the first download read this")
    c.add_argument("--spread", type=float, default=0.0)
    c.add_argument("--stall", type=float, default=3.0)
    c.add_argument("--deadline", type=float, default=60.0)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--out", required=True)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.app == "server":
        Server(args).serve()
    else:
        client(args)


if __name__ == "__main__":
    main()
