"""The receive side: in-order and out-of-order data, FIN, and when to acknowledge
(`tcp_data_queue`, `tcp_ofo_queue`, `tcp_fin`, `__tcp_ack_snd_check`).

Payload is only a length: the receive queue is a byte count (`unread`) and the out-of-order
queue a sorted list of [start, end) intervals.
"""

from __future__ import annotations

from typing import Final

from kplab.packet import Packet
from kplab.tcp.conn import FIN, Connection
from kplab.tcp.state import RECEIVING, TcpEvent, TcpState

ACK_NOW: Final = 2
ACK_DELAYED: Final = 1
_DATA: Final = TcpEvent.DATA  # bound once (Enum attribute access is slow)


def data_queue(c: Connection, p: Packet, seq: int, now_ns: int) -> int:
    """Queue the payload/FIN of an acceptable segment; returns how to acknowledge (0, 1, 2)."""
    length = p.length
    fin = p.flags & FIN
    if not length and not fin:
        return 0
    end = seq + length
    rcv_nxt = c.rcv_nxt
    if end <= rcv_nxt and not (fin and end == rcv_nxt):
        c.quick = max(c.quick, 1)
        return ACK_NOW  # duplicate: make the sender's view current
    if seq > rcv_nxt:
        return _queue_ofo(c, seq, end, bool(fin))
    new = end - rcv_nxt
    if new and c.unread + c.ooo_bytes + new > 2 * c.cfg.rcvbuf_bytes:  # memory, not window
        c.ctr.TCPRcvQDrop += 1
        return ACK_NOW
    c.rcv_nxt = end
    c.unread += new
    if new:
        _event_data_recv(c, new)
    ack = ACK_DELAYED
    if c.ooo:
        _drain_ofo(c)
        ack = ACK_NOW
    if new and c.app is not None:
        c.events.append((_DATA, c))
    if fin or c.ooo_fin == c.rcv_nxt:
        tcp_fin(c, now_ns)
        return ACK_NOW
    if c.quick or (c.rcv_nxt - c.rcv_wup > c.mss and _window_not_shrinking(c)):
        return ACK_NOW  # `__tcp_ack_snd_check`
    return ack


def _event_data_recv(c: Connection, new: int) -> None:
    """`tcp_event_data_recv` + `tcp_grow_window`: the offered window grows by two segments per
    segment while there is room. With `linux_ack_policy`, quick ACKs start with the first data
    and every segment that grows the window is ACKed at once, as Linux does."""
    limit = c.cfg.rcvbuf_bytes
    if not c.cfg.linux_ack_policy:
        if c.rcv_ssthresh < limit:
            c.rcv_ssthresh = min(c.rcv_ssthresh + max(2 * c.mss, 2 * new), limit)
        return
    if not c.got_data:
        c.got_data = True
        c.quick = max(c.quick, c.cfg.quickacks)
    if new >= 128 and c.rcv_ssthresh < limit and c.rcv_ssthresh < limit - c.unread - c.ooo_bytes:
        c.rcv_ssthresh = min(c.rcv_ssthresh + max(2 * c.mss, 2 * new), limit)
        c.quick = max(c.quick, 1)


def _window_not_shrinking(c: Connection) -> bool:
    """With `linux_ack_policy`: ACK every second segment only if `__tcp_select_window()` would not
    offer less than the last advertised window (else the delayed ACK or the reader's update)."""
    if not c.cfg.linux_ack_policy:
        return True
    free = min(c.cfg.rcvbuf_bytes - c.unread - c.ooo_bytes, c.rcv_ssthresh)
    return (free if free >= c.mss else 0) >= c.rcv_wnd


def _queue_ofo(c: Connection, seq: int, end: int, fin: bool) -> int:
    """`tcp_data_queue_ofo`: keep the interval, answer at once with SACK blocks."""
    if seq >= c.rcv_nxt + max(c.rcv_wup + c.rcv_wnd - c.rcv_nxt, 0):
        return ACK_NOW  # beyond the window: dropped
    if end > seq and c.unread + c.ooo_bytes + (end - seq) > 2 * c.cfg.rcvbuf_bytes:
        c.ctr.TCPRcvQDrop += 1
        return ACK_NOW
    c.ctr.TCPOFOQueue += 1
    if fin:
        c.ooo_fin = end
    if end > seq:
        _insert_interval(c.ooo, seq, end)
        c.ooo_bytes = sum(e - s for s, e in c.ooo)
        c.recent_sack = (seq, end)
    c.quick = max(c.quick, 1)
    return ACK_NOW


def _insert_interval(ooo: list[list[int]], start: int, end: int) -> None:
    merged = [start, end]
    keep: list[list[int]] = []
    placed = False
    for iv in ooo:
        if iv[1] < merged[0]:
            keep.append(iv)
        elif iv[0] > merged[1]:
            if not placed:
                keep.append(merged)
                placed = True
            keep.append(iv)
        else:
            merged[0] = min(merged[0], iv[0])
            merged[1] = max(merged[1], iv[1])
    if not placed:
        keep.append(merged)
    ooo[:] = keep


def _drain_ofo(c: Connection) -> None:
    """`tcp_ofo_queue`: move intervals that became in-order to the receive queue."""
    ooo = c.ooo
    while ooo and ooo[0][0] <= c.rcv_nxt:
        end = ooo.pop(0)[1]
        if end > c.rcv_nxt:
            c.unread += end - c.rcv_nxt
            c.rcv_nxt = end
    c.ooo_bytes = sum(e - s for s, e in ooo)
    if not ooo:
        c.recent_sack = None


def tcp_fin(c: Connection, now_ns: int) -> None:
    """`tcp_fin`: the peer is done sending."""
    if c.eof:
        return
    c.rcv_nxt += 1
    c.eof = True
    c.ooo_fin = -1
    if c.app is not None:
        c.events.append((_DATA, c))
    state = c.state
    if state == TcpState.ESTABLISHED:
        c.set_state(TcpState.CLOSE_WAIT)
    elif state == TcpState.FIN_WAIT1:
        c.set_state(TcpState.CLOSING)
    elif state == TcpState.FIN_WAIT2:
        c.enter_time_wait(now_ns)


def read(c: Connection, max_bytes: int) -> int:
    """The application takes up to `max_bytes`; a window update goes out when it has opened a lot
    (`tcp_cleanup_rbuf`). Returns bytes read."""
    n = min(c.unread, max_bytes)
    if n <= 0:
        return 0
    c.unread -= n
    c.delivered += n
    if c.state in RECEIVING:
        now_wnd = max(c.rcv_wup + c.rcv_wnd - c.rcv_nxt, 0)
        offer = min(c.cfg.rcvbuf_bytes - c.unread - c.ooo_bytes, c.rcv_ssthresh)  # __tcp_select_window
        if 2 * now_wnd <= c.cfg.rcvbuf_bytes and offer >= c.mss and offer >= 2 * now_wnd:
            c.send_ack()
    return n
