"""Create nfacct objects in the current network namespace (run inside a lab namespace).

`iptables -m nfacct --nfacct-name X` needs the accounting object X to exist; the `nfacct` tool is
not installed, so this sends the one nfnetlink message it would send (NFNL_MSG_ACCT_NEW).
Usage: python nfacct_create.py NAME...
"""

from __future__ import annotations

import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ACCT = 7
NFNL_MSG_ACCT_NEW = 0
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_CREATE = 0x400
NFACCT_NAME = 1
NLMSG_ERROR = 2


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def create(name: str, seq: int) -> None:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0) + _attr(NFACCT_NAME, name.encode() + b"\0")
    header = struct.pack(
        "=IHHII",
        16 + len(body),
        (NFNL_SUBSYS_ACCT << 8) | NFNL_MSG_ACCT_NEW,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        seq,
        0,
    )
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.bind((0, 0))
        sock.send(header + body)
        reply = sock.recv(4096)
    _length, kind, _flags, _seq, _pid = struct.unpack("=IHHII", reply[:16])
    error = struct.unpack("=i", reply[16:20])[0] if kind == NLMSG_ERROR else 0
    if error not in (0, -17):  # -EEXIST is fine
        raise SystemExit(f"nfacct {name}: netlink error {error}")


if __name__ == "__main__":
    for index, arg in enumerate(sys.argv[1:], start=1):
        create(arg, index)
