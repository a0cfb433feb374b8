"""ICMP destination unreachable for one of our segments (`tcp_v4_err`): fatal while opening only."""

from __future__ import annotations

import errno

from kplab.packet import ICMP, Packet
from kplab.tcp import TcpState

from .direct import A, B, established, stacks, take


def unreachable(quoted: Packet, code: int) -> Packet:
    return Packet(B, A, ICMP, icmp_type=3, icmp_code=code, inner=quoted)


def test_port_unreachable_refuses_a_connect() -> None:
    a, _ = stacks()
    conn = a.connect(A, B, 80, 0)
    conn.app = object()
    (syn,) = take(a)
    assert a.icmp_error(unreachable(syn, 3), 0) is conn
    assert conn.state == TcpState.CLOSE and conn.error == errno.ECONNREFUSED
    assert a.ctr.AttemptFails == 1


def test_host_unreachable_gives_ehostunreach() -> None:
    a, _ = stacks()
    conn = a.connect(A, B, 80, 0)
    (syn,) = take(a)
    a.icmp_error(unreachable(syn, 1), 0)
    assert conn.error == errno.EHOSTUNREACH


def test_established_connection_survives_unreachable() -> None:
    a, _, client, _ = established()
    quoted = Packet(A, B, 6, client.lport, client.rport)
    assert a.icmp_error(unreachable(quoted, 3), 0) is None
    assert client.state == TcpState.ESTABLISHED and client.error == 0


def test_error_for_an_unknown_flow_is_ignored() -> None:
    a, _ = stacks()
    assert a.icmp_error(unreachable(Packet(A, B, 6, 1234, 80), 3), 0) is None
