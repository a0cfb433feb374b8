"""Handshake options, teardown states, TIME_WAIT, timeouts and app-visible errors."""

from __future__ import annotations

import errno

from kplab.packet import TcpFlags
from kplab.scenario.schema import Faults
from kplab.sim import MS, SECOND
from kplab.tcp import TcpConfig, TcpState

from .direct import A, B, Recorder, established, shuttle, stacks, take
from .pair import CLIENT, SERVER, make_pair, run_downloads


def test_handshake_negotiates_mss_wscale_sack() -> None:
    a, b = stacks()
    b.listen(B, 80)
    client = a.connect(A, B, 80, 0)
    (syn,) = take(a)
    assert syn.flags == TcpFlags.SYN and syn.mss == 1460 and syn.wscale == 7 and syn.sackok
    assert syn.win == 64240  # 44 * MSS, as Linux offers (tcp_select_initial_window)
    b.input(syn, 0)
    (synack,) = take(b)
    assert synack.flags == TcpFlags.SYN | TcpFlags.ACK
    assert synack.ack == (syn.seq + 1) & 0xFFFFFFFF and synack.wscale == 7 and synack.sackok
    a.input(synack, 0)
    (ack,) = take(a)
    b.input(ack, 0)
    server = b.conns[(B, 80, A, client.lport)]
    assert client.state == server.state == TcpState.ESTABLISHED
    assert client.snd_wscale == server.snd_wscale == 7 and client.sack_ok and server.sack_ok
    assert a.ctr.ActiveOpens == 1 and b.ctr.PassiveOpens == 1
    assert a.ctr.CurrEstab == 1 and b.ctr.CurrEstab == 1


def test_options_only_when_both_sides_offer_them() -> None:
    a, _ = stacks(TcpConfig(window_scaling=False, sack=False, mss=1000))
    _, b = stacks()
    b.listen(B, 80)
    client = a.connect(A, B, 80, 0)
    shuttle(a, b)
    server = b.conns[(B, 80, A, client.lport)]
    assert server.snd_wscale == 0 and server.rcv_wscale == 0 and not server.sack_ok
    assert client.mss == server.mss == 1000


def test_orderly_teardown_states_and_time_wait() -> None:
    a, b, client, server = established()
    a.close(client, 0)
    (fin,) = take(a)
    assert fin.flags & TcpFlags.FIN and client.state == TcpState.FIN_WAIT1
    b.input(fin, 0)
    assert server.state == TcpState.CLOSE_WAIT and server.eof
    shuttle(a, b)
    assert client.state == TcpState.FIN_WAIT2
    b.close(server, 0)
    assert server.state == TcpState.LAST_ACK
    shuttle(a, b)
    assert server.state == TcpState.CLOSE and server.error == 0
    assert client.state == TcpState.TIME_WAIT
    assert client.next_timer_ns() == TcpConfig().timewait_ns
    a.on_timer(client, TcpConfig().timewait_ns)
    assert client.state == TcpState.CLOSE and client.key not in a.conns
    assert a.ctr.EstabResets == 0 and b.ctr.EstabResets == 0 and a.ctr.TW == 1


def test_time_wait_reacks_retransmitted_fin() -> None:
    a, b, client, server = established()
    b.close(server, 0)
    (fin,) = take(b)
    a.input(fin.copy(), 0)
    a.close(client, 0)
    shuttle(a, b)
    assert server.state == TcpState.TIME_WAIT
    client_fin_again = fin.copy()
    client_fin_again.src, client_fin_again.dst = A, B
    client_fin_again.sport, client_fin_again.dport = client.lport, 80
    client_fin_again.seq = (client.snd_nxt - 1) & 0xFFFFFFFF
    client_fin_again.ack = client.rcv_nxt & 0xFFFFFFFF
    b.input(client_fin_again, 5 * SECOND)
    (ack,) = take(b)
    assert ack.flags == TcpFlags.ACK and ack.ack == client.snd_nxt & 0xFFFFFFFF
    assert server.tw_at == 5 * SECOND + TcpConfig().timewait_ns


def test_close_with_unread_data_sends_rst() -> None:
    a, b, client, server = established()
    b.send(server, 500, 0)
    shuttle(a, b)
    assert client.unread == 500
    a.close(client, 0)
    (rst,) = take(a)
    assert rst.flags == TcpFlags.RST | TcpFlags.ACK and rst.notes == ["RST: closed with unread data"]
    assert a.ctr.TCPAbortOnClose == 1 and a.ctr.EstabResets == 1
    b.input(rst, 0)
    assert server.state == TcpState.CLOSE and server.error == errno.ECONNRESET


def test_connect_to_closed_port_is_refused() -> None:
    pair = make_pair(2)
    app = Recorder()
    pair.client.connect(CLIENT, SERVER, 81, app)
    pair.sched.run()
    assert app.events == [f"closed:{errno.ECONNREFUSED}"]
    assert pair.server.stack.ctr.OutRsts == 1


def test_syn_retries_then_etimedout_after_127_s() -> None:
    pair = make_pair(3, faults=Faults(loss=1.0))
    app = Recorder()
    conn = pair.client.connect(CLIENT, SERVER, 80, app)
    pair.sched.run()
    assert app.events == [f"closed:{errno.ETIMEDOUT}"]
    assert pair.sched.now_ns == 127 * SECOND
    assert conn.state == TcpState.CLOSE
    assert pair.client.stack.ctr.AttemptFails == 1 and pair.client.stack.ctr.RetransSegs == 6


def test_established_connection_times_out_after_tcp_retries2() -> None:
    pair = make_pair(4)
    app = Recorder()
    pair.server.listen(SERVER, 80, lambda c: Recorder())
    conn = pair.client.connect(CLIENT, SERVER, 80, app)
    pair.sched.run(until_ns=100 * MS)
    assert conn.state == TcpState.ESTABLISHED
    pair.link.a_to_b.faults = Faults(loss=1.0)  # the path dies
    sent_at = pair.sched.now_ns
    pair.client.send(conn, 1000)
    pair.sched.run()
    assert app.events == ["connected", f"closed:{errno.ETIMEDOUT}"]
    elapsed = pair.sched.now_ns - sent_at
    assert 924.6 * SECOND <= elapsed < 924.6 * SECOND + 121 * SECOND  # tcp_model_timeout(15, 200 ms)
    ctr = pair.client.stack.ctr
    assert ctr.TCPAbortOnTimeout == 1 and ctr.EstabResets == 1


def test_slow_reader_closes_and_reopens_the_window() -> None:
    pair = make_pair(5, cfg=TcpConfig(rcvbuf_bytes=32768))
    work = run_downloads(pair, 400_000, read_rate_bps=200_000, until_ns=60 * SECOND)
    (dl,) = work.downloads
    assert dl.outcome.value == "completed" and dl.received == 400_000
    assert dl.end_ns - dl.start_ns >= 400_000 * 8 * SECOND // 200_000 - SECOND
    ctr = pair.client.stack.ctr
    assert ctr.TCPToZeroWindowAdv > 0 and ctr.TCPFromZeroWindowAdv > 0


def test_zero_window_probes_at_snd_una_minus_one() -> None:
    a, b, client, server = established(TcpConfig(rcvbuf_bytes=16384))
    b.send(server, 100_000, 0)
    now = 0
    for _ in range(20):
        now += 50 * MS
        shuttle(a, b, now)
        for stack, conn in ((a, client), (b, server)):
            if conn.next_timer_ns() and conn.next_timer_ns() <= now:
                stack.on_timer(conn, now)
    assert server.snd_wnd == 0 and client.unread > 16384 - 1460
    assert server.persist_at and not server.packets_out
    now = server.persist_at
    b.on_timer(server, now)
    (probe,) = take(b)
    assert probe.length == 0 and probe.seq == (server.snd_una - 1) & 0xFFFFFFFF
    a.input(probe, now)
    (answer,) = take(a)
    assert answer.win == 0 and answer.ack == server.snd_una & 0xFFFFFFFF
    a.read(client, client.unread, now)
    (update,) = take(a)
    assert update.win > 0
    b.input(update, now)
    assert take(b), "the window update restarts the transfer"


def test_receive_window_opens_gradually_from_the_initial_window() -> None:
    a, b, client, server = established()
    b.send(server, 5 * 1460, 0)
    windows = []
    for p in take(b):
        a.input(p, 0)
        a.read(client, client.unread, 0)
        windows += [q.win << client.rcv_wscale for q in take(a)]
    assert windows[0] <= 64240 + 2 * 1460
    assert windows == sorted(windows) and windows[-1] > windows[0]
    assert windows[-1] < TcpConfig().rcvbuf_bytes  # not the whole buffer at once
