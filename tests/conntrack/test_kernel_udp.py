"""UDP against the real kernel: unreplied and replied timeouts, ASSURED, counters (host profile)."""

from __future__ import annotations

import platform
import random

import pytest

from kplab.netfilter.conntrack import Conntrack, Sysctls, get_profile
from kplab.netfilter.ctview import FiveTuple
from kplab.packet import UDP, Packet, fmt_ip, ip

from .kernlab import KernelNode

pytestmark = pytest.mark.kernel
CLIENT, POD = ip("10.0.0.2"), ip("10.0.1.2")


def _kernel_entry(node: KernelNode, sport: int) -> tuple[int, bool, bool, list[int]] | None:
    head = f"src={fmt_ip(CLIENT)} dst={fmt_ip(POD)} sport={sport} dport=53"
    for line in node.conntrack_lines():
        if " udp " in line and head in line:
            fields = line.split()
            counters = [int(f.split("=")[1]) for f in fields if f.startswith(("packets=", "bytes="))]
            return int(fields[4]), "[UNREPLIED]" in fields, "[ASSURED]" in fields, counters
    return None


def test_udp_query_answer_follow_up_match_kernel(kernel_node: KernelNode) -> None:
    kernel_node.configure({}, drop_invalid=False)
    sport = 5300 + random.Random(0).randrange(1000)
    ct = Conntrack(get_profile("host", platform.release()), Sysctls(nf_conntrack_acct=1), random.Random(0))
    now = 1_000_000_000
    script = [(True, 40), (False, 120), (True, 10)]  # query, answer, follow-up within 2 s
    for from_client, length in script:
        src, dst, s, d = (CLIENT, POD, sport, 53) if from_client else (POD, CLIENT, 53, sport)
        out = kernel_node.send_packet(Packet(src, dst, UDP, s, d, length=length), from_client)
        res = ct.lookup(Packet(src, dst, UDP, s, d, length=length), "PREROUTING", now)
        ct.confirm(res, now)
        assert out is not None and (out.src, out.dst) == (src, dst)
        tos = int(out.notes[0].removeprefix("tos="))
        assert {1: "NEW", 2: "ESTABLISHED"}[tos >> 2] == res.ctstate
        entry = ct.find(FiveTuple(CLIENT, POD, UDP, sport, 53))
        assert entry is not None and entry.acct is not None
        kernel = _kernel_entry(kernel_node, sport)
        assert kernel is not None
        timeout, unreplied, assured, counters = kernel
        expected = (entry.timeout_ns - now) // 1_000_000_000
        assert expected - 3 <= timeout <= expected
        assert (unreplied, assured, counters) == (not entry.status & 2, entry.assured, entry.acct)
