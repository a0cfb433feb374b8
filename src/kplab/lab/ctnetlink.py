"""Fill a node's conntrack table through ctnetlink (NETLINK_NETFILTER, IPCTNL_MSG_CT_NEW).

`conntrack -I` forks one process per entry (minutes for a full table); here the messages are
built in Python and sent in batches, a few hundred per sendmsg, from a socket opened inside the
node's namespace. Fillers are other flows (10.0.0.254 -> 10.0.1.254:80 from distinct ports and
sources), never the entry under test, ESTABLISHED, either ASSURED (early_drop cannot evict them)
or not. `nf_conntrack_max` is global and read-only in a child namespace, and each namespace
compares its own count against it: filling the table means inserting up to that many entries.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from kplab.lab.inside import inside
from kplab.lab.netns import Netns

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_DELETE = 0, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL = 0x1, 0x4, 0x400, 0x200
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT = 1, 2, 3, 4, 7
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED = 0x2, 0x4, 0x8
TCP_CONNTRACK_ESTABLISHED = 3
BATCH = 256
# Fillers outlive any run, however slow (they go with the namespace): none expires mid-matrix.
FILLER_TIMEOUT_S = 86_400


def _attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    length = 4 + len(payload)
    pad = (4 - length % 4) % 4
    return struct.pack("=HH", length, kind | (NLA_F_NESTED if nested else 0)) + payload + b"\0" * pad


def _tuple(kind: int, src: int, dst: int, sport: int, dport: int) -> bytes:
    ips = _attr(CTA_IP_V4_SRC, struct.pack("!I", src)) + _attr(CTA_IP_V4_DST, struct.pack("!I", dst))
    proto = (_attr(CTA_PROTO_NUM, bytes([socket.IPPROTO_TCP]))
             + _attr(CTA_PROTO_SRC_PORT, struct.pack("!H", sport))
             + _attr(CTA_PROTO_DST_PORT, struct.pack("!H", dport)))  # fmt: skip
    return _attr(kind, _attr(CTA_TUPLE_IP, ips, True) + _attr(CTA_TUPLE_PROTO, proto, True), True)


def new_entry(seq: int, src: int, dst: int, sport: int, dport: int, assured: bool, timeout_s: int) -> bytes:
    """One IPCTNL_MSG_CT_NEW message: an ESTABLISHED TCP entry, ASSURED or not."""
    # CONFIRMED is set on a ctnetlink-created entry before the status is applied; the status
    # must keep it (the kernel refuses to flip it: EBUSY).
    status = IPS_CONFIRMED | (IPS_SEEN_REPLY | IPS_ASSURED if assured else 0)
    tcp = _attr(CTA_PROTOINFO_TCP, _attr(CTA_PROTOINFO_TCP_STATE, bytes([TCP_CONNTRACK_ESTABLISHED])), True)
    body = (struct.pack("=BBH", socket.AF_INET, 0, 0)
            + _tuple(CTA_TUPLE_ORIG, src, dst, sport, dport)
            + _tuple(CTA_TUPLE_REPLY, dst, src, dport, sport)
            + _attr(CTA_STATUS, struct.pack("!I", status))
            + _attr(CTA_TIMEOUT, struct.pack("!I", timeout_s))
            + _attr(CTA_PROTOINFO, tcp, True))  # fmt: skip
    kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def delete_entry(seq: int, src: int, dst: int, sport: int, dport: int) -> bytes:
    """One IPCTNL_MSG_CT_DELETE message for the entry whose original tuple is given."""
    body = struct.pack("=BBH", socket.AF_INET, 0, 0) + _tuple(CTA_TUPLE_ORIG, src, dst, sport, dport)
    kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
    return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def filler(i: int) -> tuple[int, int, int, int]:
    """The i-th filler flow (src, dst, sport, dport): other clients 10.0.0.254 and down -> 10.0.1.254:80."""
    return 0x0A0000FE - i // 64000, 0x0A0001FE, 1024 + i % 64000, 80


def filler_tuples(count: int, start: int = 0) -> Iterator[tuple[int, int, int, int]]:
    for i in range(start, start + count):
        yield filler(i)


def count(node: Netns) -> int:
    return int(node.read("/proc/sys/net/netfilter/nf_conntrack_count"))


def limit(node: Netns) -> int:
    return int(node.read("/proc/sys/net/netfilter/nf_conntrack_max"))


def _send_all(node: Netns, messages: list[bytes]) -> int:
    """Send the messages in acknowledged batches from a socket in `node`; how many succeeded."""
    with inside(node):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    done = 0
    try:
        sock.bind((0, 0))
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            sock.send(b"".join(chunk))
            done += _acks(sock, len(chunk))
    finally:
        sock.close()
    return done


def insert(
    node: Netns, tuples: list[tuple[int, int, int, int]], assured: bool, timeout_s: int = FILLER_TIMEOUT_S
) -> int:
    """Insert the entries; returns how many the kernel took (a full table refuses with ENOMEM)."""
    return _send_all(node, [new_entry(i + 1, *t, assured, timeout_s) for i, t in enumerate(tuples)])


def delete(node: Netns, tuples: list[tuple[int, int, int, int]]) -> int:
    return _send_all(node, [delete_entry(i + 1, *t) for i, t in enumerate(tuples)])


def _acks(sock: socket.socket, expected: int) -> int:
    """Read `expected` acknowledgements; count the successes (ENOMEM: the table is full)."""
    ok = seen = 0
    while seen < expected:
        data = sock.recv(1 << 20)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind == NLMSG_ERROR:
                code = struct.unpack_from("=i", data, offset + 16)[0]
                seen += 1
                if code == 0:
                    ok += 1
                elif -code not in (errno.ENOMEM, errno.EEXIST, errno.ENOSPC, errno.ENOENT):
                    raise OSError(-code, f"ctnetlink insert failed: {errno.errorcode.get(-code, code)}")
            offset += (length + 3) & ~3
    return ok


@dataclass(slots=True)
class FillState:
    """Filler flows in one node's table: which indexes were used, and of which kind."""

    next_index: int = 0
    first_live: int = 0

    def top_up(self, node: Netns, assured: bool, spare: int = 0) -> int:
        """Insert fillers until the namespace's count reaches nf_conntrack_max - spare; how many."""
        added = 0
        for _ in range(8):
            need = limit(node) - spare - count(node)
            if need <= 0:
                break
            added += insert(node, list(filler_tuples(need, self.next_index)), assured)
            self.next_index += need
        return added

    def make_room(self, node: Netns, spare: int) -> int:
        """Delete the oldest fillers until `spare` slots are free (room for new connections)."""
        slots = count(node) - (limit(node) - spare)
        if slots <= 0:
            return 0
        end = min(self.first_live + slots, self.next_index)
        removed = delete(node, list(filler_tuples(end - self.first_live, self.first_live)))
        self.first_live = end
        return removed

    def forget(self) -> None:
        """After a flush: no filler is left."""
        self.next_index = self.first_live = 0
