"""Random segments, timers and application calls never crash a connection or break its books."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kplab.packet import TCP, Packet
from kplab.tcp import Connection, TcpConfig, TcpStack, TcpState

from .direct import A, B, established, shuttle

MASK = 0xFFFFFFFF
offsets = st.one_of(st.integers(-3000, 3000), st.integers(-(2**31), 2**31))
segment = st.tuples(
    st.just("seg"),
    st.integers(0, 0x1F),  # FIN SYN RST PSH ACK in any combination
    offsets,
    offsets,
    st.sampled_from([0, 1, 100, 1460, 3000]),
    st.lists(st.tuples(st.integers(-5000, 50_000), st.integers(0, 5000)), max_size=3),
)
action = st.one_of(
    segment,
    st.tuples(st.just("send"), st.integers(1, 20_000)),
    st.tuples(st.just("timer"), st.integers(1, 10**9)),
    st.tuples(st.just("read"), st.integers(0, 50_000)),
    st.tuples(
        st.just("close"),
    ),
    st.tuples(
        st.just("pump"),
    ),
)


def _check(stack: TcpStack, conn: Connection) -> None:
    assert 0 <= conn.sacked_out <= conn.packets_out == len(conn.sb)
    assert 0 <= conn.lost_out <= conn.packets_out and 0 <= conn.retrans_out <= conn.packets_out
    assert conn.snd_una <= conn.snd_nxt <= conn.write_end + 1
    assert conn.unread >= 0 and conn.ooo_bytes >= 0 and conn.cwnd >= 1
    assert all(value >= 0 for value in stack.ctr.as_nstat(nonzero=False).values())
    if conn.state == TcpState.CLOSE:
        assert stack.conns.get(conn.key) is not conn


def _segment(client: Connection, server: Connection, act: tuple) -> Packet:  # type: ignore[type-arg]
    _kind, flags, seq_off, ack_off, length, blocks = act
    seq = (server.rcv_nxt + seq_off) & MASK
    ack = (server.snd_una + ack_off) & MASK
    sack = tuple(((server.snd_una + s) & MASK, (server.snd_una + s + n) & MASK) for s, n in blocks)
    return Packet(A, B, TCP, client.lport, 80, flags, seq, ack, 300, length, sack=sack)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, max_size=40), st.booleans())
def test_random_inputs_keep_the_books(actions: list[tuple], sack: bool) -> None:  # type: ignore[type-arg]
    a, b, client, server = established(TcpConfig(sack=sack))
    now = 0
    for act in actions:
        kind = act[0]
        if kind == "seg":
            b.input(_segment(client, server, act), now)
        elif kind == "send" and server.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            if not server.fin_queued:
                b.send(server, act[1], now)
        elif kind == "timer":
            now += act[1]
            for stack, conn in ((a, client), (b, server)):
                if conn.next_timer_ns() and conn.next_timer_ns() <= now:
                    stack.on_timer(conn, now)
        elif kind == "read":
            b.read(server, act[1], now)
        elif kind == "close":
            b.close(server, now)
        elif kind == "pump":
            shuttle(a, b, now, rounds=200)
        _check(b, server)
        _check(a, client)
        b.out.clear()
