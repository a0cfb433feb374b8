"""One TCP connection (the TCB): state, sequence variables, timers, and segment emission.

Sequence numbers are kept internally as unbounded integers (`iss + offset`); they are folded to
32 bits only on the wire (`& MASK`), and a received value is unfolded next to the variable it
is compared with (`unwrap`). All comparisons are then plain integer comparisons.

The sequence state, windows, packet counts and times are fixed-width `i64` (compiled, stored and
computed unboxed): `iss + offset` stays below 2**33 + the bytes a run can send, times below the
run's length in ns, so nothing comes near 2**63 and the compiled arithmetic is Python's. CUBIC's
state stays `int` (`kplab.tcp.cc` cubes times in ms).

Input processing lives in `kplab.tcp.input`, the send side in `kplab.tcp.output`, the receive
queue and window in `kplab.tcp.recv`; they are functions over this record.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final, Protocol

from mypy_extensions import i64

from kplab.packet import TCP, Packet, TcpFlags
from kplab.tcp.config import TcpConfig
from kplab.tcp.counters import TcpCounters
from kplab.tcp.listener import Listener
from kplab.tcp.state import CaState, TcpEvent, TcpState


class SocketTable(Protocol):
    """What a connection asks of the stack that holds it (`kplab.tcp.stack.TcpStack`)."""

    cfg: TcpConfig
    ctr: TcpCounters
    out: list[Packet]
    events: list[tuple[TcpEvent, Connection]]

    def unhash(self, conn: Connection) -> None: ...
    def challenge_ack_allowed(self, now_ns: int) -> bool: ...
    def send_reset_for(self, pkt: Packet, note: str = "") -> None: ...
    def accepted(self, conn: Connection) -> None: ...


MASK: Final = 0xFFFFFFFF
HALF: Final = 0x80000000
ACK: Final = int(TcpFlags.ACK)
SYN: Final = int(TcpFlags.SYN)
FIN: Final = int(TcpFlags.FIN)
RST: Final = int(TcpFlags.RST)
PSH: Final = int(TcpFlags.PSH)


def initial_window(cfg: TcpConfig) -> int:
    """`tcp_select_initial_window`: the SYN's window, a whole number of MSS below 64 KiB
    (64240 for MSS 1460), also where the receive window starts growing from."""
    return min(cfg.rcvbuf_bytes, 65535) // cfg.mss * cfg.mss


def unwrap(wire: i64, ref: i64) -> i64:
    """The unbounded sequence number congruent to `wire` (mod 2**32) that is nearest to `ref`."""
    return ref + ((wire - ref + HALF) & MASK) - HALF


class Seg:
    """A sent, not yet cumulatively acknowledged segment (the retransmission queue entry)."""

    __slots__ = ("end", "fin", "lost", "retrans", "retransmitted", "sacked", "sent_ns", "start")

    start: i64
    end: i64
    sent_ns: i64

    def __init__(self, start: i64, end: i64, sent_ns: i64, fin: bool) -> None:
        self.start = start
        self.end = end
        self.sent_ns = sent_ns
        self.fin = fin
        self.sacked = False
        self.lost = False
        self.retrans = False  # retransmitted and still counted in retrans_out
        self.retransmitted = False  # ever retransmitted (TCPCB_EVER_RETRANS): no RTT sample


class Connection:
    """A socket's protocol state. Applications use it through `TcpHost` (or `TcpStack` directly)."""

    __slots__ = (
        "app",
        "app_closed",
        "armed_ns",
        "backoff",
        "ca_state",
        "cfg",
        "ctr",
        "cubic_ack_cnt",
        "cubic_epoch_ns",
        "cubic_k_ms",
        "cubic_last_max",
        "cubic_origin",
        "cubic_tcp_cwnd",
        "cwnd",
        "cwnd_cnt",
        "delack_at",
        "delivered",
        "dupacks",
        "eof",
        "error",
        "events",
        "fin_queued",
        "fin_sent",
        "got_data",
        "high_seq",
        "highest_sack",
        "in_backlog",
        "iss",
        "key",
        "laddr",
        "last_oow_ack_ns",
        "listener",
        "lost_out",
        "lport",
        "max_window",
        "min_rtt_ns",
        "mss",
        "ooo",
        "ooo_bytes",
        "ooo_fin",
        "out",
        "packets_out",
        "persist_at",
        "prior_cwnd",
        "probes_out",
        "prr_delivered",
        "prr_out",
        "quick",
        "raddr",
        "rcv_nxt",
        "rcv_ssthresh",
        "rcv_wnd",
        "rcv_wscale",
        "rcv_wup",
        "recent_sack",
        "retrans_out",
        "retrans_stamp",
        "retransmits",
        "rport",
        "rto_at",
        "rto_ns",
        "rttvar_ns",
        "sack_ok",
        "sacked_out",
        "sb",
        "snd_nxt",
        "snd_sml",
        "snd_una",
        "snd_wl1",
        "snd_wnd",
        "snd_wscale",
        "srtt_ns",
        "ssthresh",
        "stack",
        "state",
        "tw_at",
        "unread",
        "write_end",
    )

    # timers (absolute deadlines in ns, 0 = off) and times
    armed_ns: i64
    rto_at: i64
    delack_at: i64
    persist_at: i64
    tw_at: i64
    rto_ns: i64
    srtt_ns: i64
    rttvar_ns: i64
    min_rtt_ns: i64
    retrans_stamp: i64
    last_oow_ack_ns: i64
    # send side: sequence numbers, windows, segments and packets in flight, congestion window
    iss: i64
    snd_una: i64
    snd_nxt: i64
    write_end: i64
    snd_sml: i64
    snd_wl1: i64
    snd_wnd: i64
    max_window: i64
    snd_wscale: i64
    high_seq: i64
    highest_sack: i64
    mss: i64
    packets_out: i64
    sacked_out: i64
    lost_out: i64
    retrans_out: i64
    cwnd: i64
    cwnd_cnt: i64
    ssthresh: i64
    dupacks: i64
    prior_cwnd: i64
    prr_delivered: i64
    prr_out: i64
    backoff: i64
    retransmits: i64
    probes_out: i64
    # receive side
    rcv_nxt: i64
    rcv_wup: i64
    rcv_wnd: i64
    rcv_wscale: i64
    rcv_ssthresh: i64
    unread: i64
    delivered: i64
    ooo_bytes: i64
    ooo_fin: i64
    quick: i64

    def __init__(self, stack: SocketTable, laddr: int, lport: int, raddr: int, rport: int, iss: int) -> None:
        cfg = stack.cfg
        self.stack = stack
        self.cfg: TcpConfig = cfg
        self.ctr: TcpCounters = stack.ctr
        self.out: list[Packet] = stack.out
        self.events: list[tuple[TcpEvent, Connection]] = stack.events
        self.laddr, self.lport, self.raddr, self.rport = laddr, lport, raddr, rport
        self.key = (laddr, lport, raddr, rport)
        self.state = TcpState.CLOSE
        self.error = 0
        self.app: Any = None
        self.listener: Listener | None = None
        self.in_backlog = False
        self.app_closed = False
        self.armed_ns = 0
        self.rto_at = self.delack_at = self.persist_at = self.tw_at = 0  # timers (0 = off)
        self._init_send_side(cfg, iss)
        self._init_receive_side(cfg)

    def _init_send_side(self, cfg: TcpConfig, iss: int) -> None:
        self.iss = iss
        self.snd_una = self.snd_nxt = self.write_end = iss
        self.snd_wnd = self.max_window = 0
        self.snd_wl1 = 0
        self.snd_wscale = 0
        self.snd_sml = iss
        self.mss = cfg.mss
        self.sack_ok = False
        self.fin_queued = self.fin_sent = False
        self.sb: deque[Seg] = deque()
        self.packets_out = self.sacked_out = self.lost_out = self.retrans_out = 0
        self.highest_sack = iss
        self.cwnd = cfg.initial_cwnd
        self.cwnd_cnt = 0
        self.ssthresh = cfg.max_cwnd
        self.ca_state = CaState.OPEN
        self.high_seq = iss
        self.dupacks = 0
        self.prior_cwnd = self.prr_delivered = self.prr_out = 0
        self.cubic_epoch_ns = self.cubic_last_max = self.cubic_k_ms = self.cubic_origin = 0
        self.cubic_ack_cnt = self.cubic_tcp_cwnd = 0
        self.min_rtt_ns = 0
        self.srtt_ns = self.rttvar_ns = 0
        self.rto_ns = cfg.rto_initial_ns
        self.backoff = self.retransmits = self.retrans_stamp = self.probes_out = 0

    def _init_receive_side(self, cfg: TcpConfig) -> None:
        self.rcv_nxt = self.rcv_wup = self.rcv_wnd = 0
        self.rcv_wscale = 0
        self.rcv_ssthresh = initial_window(cfg)
        self.unread = self.delivered = 0
        self.ooo: list[list[int]] = []
        self.ooo_bytes = 0
        self.ooo_fin = -1
        self.recent_sack: tuple[int, int] | None = None
        self.eof = False
        self.quick = 0 if cfg.linux_ack_policy else cfg.quickacks  # quick ACKs left
        self.got_data = False
        self.last_oow_ack_ns = 0

    def __repr__(self) -> str:
        return f"<Connection {self.key} {self.state.name}>"

    # ---- state changes -------------------------------------------------------------------

    def set_state(self, new: TcpState) -> None:
        """`tcp_set_state`: keeps TcpCurrEstab and counts TcpEstabResets on CLOSE from EST/CLOSE_WAIT."""
        old = self.state
        if new == TcpState.ESTABLISHED and old != TcpState.ESTABLISHED:
            self.ctr.CurrEstab += 1
        elif old == TcpState.ESTABLISHED:
            self.ctr.CurrEstab -= 1
        if new == TcpState.CLOSE and old in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            self.ctr.EstabResets += 1
        self.state = new

    def done(self, error: int = 0) -> None:
        """`tcp_done`: the socket is closed; the application is told (with an errno, or 0)."""
        if self.state == TcpState.CLOSE:
            return
        if error and self.state in (TcpState.SYN_SENT, TcpState.SYN_RECV):
            self.ctr.AttemptFails += 1
        self.set_state(TcpState.CLOSE)
        self.error = self.error or error
        self.rto_at = self.delack_at = self.persist_at = self.tw_at = 0
        self.stack.unhash(self)
        if self.app is not None:
            self.events.append((TcpEvent.CLOSED, self))

    def enter_time_wait(self, now_ns: int) -> None:
        """`tcp_time_wait`: keep the 4-tuple for TCP_TIMEWAIT_LEN, answering retransmitted FINs."""
        self.set_state(TcpState.TIME_WAIT)
        self.rto_at = self.persist_at = self.delack_at = 0
        self.tw_at = now_ns + self.cfg.timewait_ns

    # ---- emission --------------------------------------------------------------------------

    def select_window(self) -> int:
        """`tcp_select_window`: the window field to send (scaled), never shrinking the offer."""
        free = self.cfg.rcvbuf_bytes - self.unread - self.ooo_bytes
        if free > self.rcv_ssthresh:
            free = self.rcv_ssthresh  # the window opens gradually (tcp_grow_window)
        if free < self.mss:
            free = 0
        cur = self.rcv_wup + self.rcv_wnd - self.rcv_nxt
        shift = self.rcv_wscale
        if cur > free:
            new = ((cur + (1 << shift) - 1) >> shift) << shift  # round up: never shrink
        else:
            new = (free >> shift) << shift
        new = min(new, 65535 << shift)
        if new == 0 and self.rcv_wnd:
            self.ctr.TCPToZeroWindowAdv += 1
        elif new and not self.rcv_wnd:
            self.ctr.TCPFromZeroWindowAdv += 1
        self.rcv_wnd = new
        self.rcv_wup = self.rcv_nxt
        return new >> shift

    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """Up to 4 SACK blocks (no timestamps), the most recently changed block first (RFC 2018)."""
        blocks: list[tuple[int, int]] = []
        recent = self.recent_sack
        for start, end in self.ooo:
            if recent is not None and start <= recent[0] < end:
                blocks.insert(0, (start & MASK, end & MASK))
            else:
                blocks.append((start & MASK, end & MASK))
        return tuple(blocks[:4])

    def emit(self, flags: int, seq: int, length: int) -> Packet:
        """Build and queue one segment carrying the current ACK, window and SACK state."""
        pkt = Packet(
            self.laddr,
            self.raddr,
            TCP,
            self.lport,
            self.rport,
            flags | ACK,
            seq & MASK,
            self.rcv_nxt & MASK,
            self.select_window(),
            length,
        )
        if self.ooo and self.sack_ok:
            pkt.sack = self.sack_blocks()
        self.delack_at = 0
        if self.quick:
            self.quick -= 1
        self.ctr.OutSegs += 1
        self.out.append(pkt)
        return pkt

    def send_ack(self) -> None:
        self.emit(0, self.snd_nxt, 0)

    def send_syn(self, with_ack: bool) -> None:
        """SYN or SYN-ACK with MSS, window scale and SACK-permitted options; the window is unscaled."""
        cfg = self.cfg
        flags = SYN | ACK if with_ack else SYN
        pkt = Packet(
            self.laddr,
            self.raddr,
            TCP,
            self.lport,
            self.rport,
            flags,
            self.iss & MASK,
            self.rcv_nxt & MASK if with_ack else 0,
            initial_window(cfg),
            0,
            mss=cfg.mss,
        )
        if cfg.window_scaling and (not with_ack or self.rcv_wscale):
            pkt.wscale = cfg.wscale
        if cfg.sack and (not with_ack or self.sack_ok):
            pkt.sackok = True
        self.ctr.OutSegs += 1
        self.out.append(pkt)

    def send_active_reset(self, why: str) -> None:
        """`tcp_send_active_reset`: RST|ACK at SND.NXT; `why` becomes the packet's note."""
        pkt = Packet(
            self.laddr,
            self.raddr,
            TCP,
            self.lport,
            self.rport,
            RST | ACK,
            self.snd_nxt & MASK,
            self.rcv_nxt & MASK,
            0,
            0,
            notes=[f"RST: {why}"],
        )
        self.ctr.OutRsts += 1
        self.ctr.OutSegs += 1
        self.out.append(pkt)

    def oow_rate_limited(self, now_ns: int, data_segment: bool) -> bool:
        """`tcp_oow_rate_limited`: at most one out-of-window ACK per tcp_invalid_ratelimit (the
        caller counts the skipped ACK under its own name).

        Data segments (not SYN) are never limited: they are not part of an ACK loop.
        """
        if data_segment:
            return False
        last = self.last_oow_ack_ns
        if last and now_ns - last < self.cfg.invalid_ratelimit_ns:
            return True
        self.last_oow_ack_ns = now_ns
        return False

    def send_challenge_ack(self, now_ns: int, why: str) -> None:
        """`tcp_send_challenge_ack`: per-socket rate limit, then the per-host limit (RFC 5961).
        `why` becomes the packet's note (a capture comment)."""
        if self.oow_rate_limited(now_ns, False):
            self.ctr.TCPACKSkippedChallenge += 1
            return
        if not self.stack.challenge_ack_allowed(now_ns):
            return
        self.ctr.TCPChallengeACK += 1
        self.emit(0, self.snd_nxt, 0).notes.append(f"challenge ACK: {why}")

    def next_timer_ns(self) -> int:
        """Earliest pending timer deadline, 0 if none."""
        best = self.rto_at
        t = self.delack_at
        if t and (not best or t < best):
            best = t
        t = self.persist_at
        if t and (not best or t < best):
            best = t
        t = self.tw_at
        if t and (not best or t < best):
            best = t
        return best
