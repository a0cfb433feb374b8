"""Less common state transitions: simultaneous close, SYN-ACK retransmission, listen backlog,
TIME_WAIT reuse by a new SYN, orphaned FIN_WAIT2, data for a closed socket."""

from __future__ import annotations

import itertools

from kplab.packet import TCP, Packet, TcpFlags
from kplab.sim import SECOND
from kplab.tcp import TcpConfig, TcpState

from .direct import A, B, established, shuttle, stacks, take

MASK = 0xFFFFFFFF


def test_simultaneous_close_goes_through_closing() -> None:
    a, b, client, server = established()
    a.close(client, 0)
    b.close(server, 0)
    fin_a, fin_b = take(a), take(b)
    b.input(fin_a[0], 0)
    a.input(fin_b[0], 0)
    assert client.state == server.state == TcpState.CLOSING
    shuttle(a, b)
    assert client.state == server.state == TcpState.TIME_WAIT


def test_lost_syn_ack_is_retransmitted_then_the_request_dropped() -> None:
    a, b = stacks()
    b.listen(B, 80)
    a.connect(A, B, 80, 0)
    b.input(take(a)[0], 0)
    (synack,) = take(b)
    (child,) = b.conns.values()
    assert child.state == TcpState.SYN_RECV
    now = 0
    for i in range(TcpConfig().synack_retries):
        now = child.next_timer_ns()
        b.on_timer(child, now)
        (again,) = take(b)
        assert again.flags == synack.flags and again.seq == synack.seq, i
    b.on_timer(child, child.next_timer_ns())
    assert child.state == TcpState.CLOSE and not b.conns and take(b) == []
    assert b.listeners[(B, 80)].pending == 0 and now == 31 * SECOND


def test_listen_backlog_overflow_drops_syns() -> None:
    a, b = stacks()
    b.listen(B, 80, backlog=2)
    for _ in range(3):
        a.connect(A, B, 80, 0)
    for syn in take(a):
        b.input(syn, 0)
    assert len(take(b)) == 2
    assert b.ctr.ListenOverflows == 1 and b.ctr.ListenDrops == 1


def test_new_syn_recycles_time_wait() -> None:
    a, b, client, server = established()
    b.close(server, 0)
    shuttle(a, b)
    a.close(client, 0)
    shuttle(a, b)
    assert server.state == TcpState.TIME_WAIT
    syn = Packet(A, B, TCP, client.lport, 80, int(TcpFlags.SYN), (client.snd_nxt + 100_000) & MASK, 0, 100, 0)
    b.input(syn, SECOND)
    (synack,) = take(b)
    assert synack.flags == TcpFlags.SYN | TcpFlags.ACK
    fresh = b.conns[(B, 80, A, client.lport)]
    assert fresh is not server and fresh.state == TcpState.SYN_RECV


def test_orphaned_fin_wait2_times_out() -> None:
    a, b, client, _server = established()
    a.close(client, 0)
    shuttle(a, b)
    assert client.state == TcpState.FIN_WAIT2
    assert client.next_timer_ns() == TcpConfig().fin_timeout_ns
    a.on_timer(client, TcpConfig().fin_timeout_ns)
    assert client.state == TcpState.CLOSE and client.key not in a.conns


def test_data_for_a_closed_socket_is_answered_with_rst() -> None:
    a, b, client, server = established()
    a.close(client, 0)
    shuttle(a, b)
    b.send(server, 100, 0)
    (data,) = take(b)
    a.input(data, 0)
    (rst,) = take(a)
    assert rst.flags == TcpFlags.RST | TcpFlags.ACK and rst.notes == ["RST: data for a closed socket"]
    assert a.ctr.TCPAbortOnData == 1 and client.state == TcpState.CLOSE


def test_ephemeral_ports_are_even_and_step_forward_per_destination() -> None:
    a, _ = stacks()
    ports = [a.connect(A, B, 80, 0).lport for _ in range(20)]
    cfg = TcpConfig()
    assert all(p % 2 == cfg.port_low % 2 for p in ports)  # even offsets from the range start first
    steps = [(q - p) % (cfg.port_high - cfg.port_low + 1) for p, q in itertools.pairwise(ports)]
    assert all(2 <= step <= 16 and step % 2 == 0 for step in steps)
    assert len(set(steps)) > 1
