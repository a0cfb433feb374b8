"""kube-proxy's generated iptables rules loaded into a real-kernel lab namespace (`kplab.lab.netns.Netns`).

`-m nfacct` rules load only if their counter exists in the namespace (the kernel answers ENOENT
otherwise), so `load` first creates the environment's nfacct counters over nfnetlink
(NFNL_SUBSYS_ACCT / NFNL_MSG_ACCT_NEW), running this module inside the namespace.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

from kplab.kubeproxy.api import GeneratedRules
from kplab.lab.netns import Netns

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ACCT = 7
NFNL_MSG_ACCT_NEW = 0
NFACCT_NAME = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400


def create_nfacct(name: str) -> None:
    """Create one nfacct counter in the current network namespace (like `nfacct add NAME`)."""
    raw = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(raw), NFACCT_NAME) + raw
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0) + attr
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    header = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_ACCT << 8) | NFNL_MSG_ACCT_NEW, flags, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER) as sock:
        sock.bind((0, 0))
        sock.send(header + body)
        reply = sock.recv(4096)
    error = struct.unpack("=i", reply[16:20])[0]
    if error not in (0, -17):  # 0 = created, -EEXIST = already there
        raise OSError(-error, f"nfacct {name}: netlink error {error}")


def load(ns: Netns, rules: GeneratedRules, nfacct: frozenset[str] = frozenset()) -> float:
    """Create the nfacct counters, then `iptables-restore` the rules; returns the restore's seconds."""
    if nfacct:
        ns.run([sys.executable, "-m", "kplab.lab.kprules", *sorted(nfacct)])
    start = time.perf_counter()
    ns.run(["iptables-restore"], input=rules.restore_text, timeout=600)
    return time.perf_counter() - start


if __name__ == "__main__":
    for counter in sys.argv[1:]:
        create_nfacct(counter)
