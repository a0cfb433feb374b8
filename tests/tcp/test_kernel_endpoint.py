"""Differential test: kplab's TCP endpoint and the running Linux kernel answer the same crafted
segments the same way (RFC 9293 no-socket RSTs, RFC 5961 RST/SYN handling, challenge ACKs,
handshake options). Sequence numbers are compared relative to each side's ISN."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

import pytest

from kplab.lab.netns import Lab
from kplab.packet import TCP, Packet, flags_to_str
from kplab.tcp import TcpConfig, TcpStack, TcpState

from .kernel_endpoint import HOST, PEER, KernelClient, KernelEndpoint, KplabEndpoint

MASK = 0xFFFFFFFF
PEER_ISN = 1_000_000
S, F, R, P, A = 0x02, 0x01, 0x04, 0x08, 0x10


@dataclass(frozen=True)
class Inject:
    """A segment relative to the connection: seq from the peer's next byte, ack from the host's."""

    flags: int
    seq_off: int = 0
    ack_off: int = 0
    length: int = 0


# name -> segments after the handshake; the socket's state is compared at the end
CASES: dict[str, list[Inject]] = {
    "data is acknowledged": [Inject(P | A, 0, 0, 100)],
    "RST at RCV.NXT resets": [Inject(R, 0)],
    "RST in window but not exact: challenge ACK": [Inject(R, 1)],
    "RST far beyond the window: ignored": [Inject(R, 2**30)],
    "RST below RCV.NXT: ignored": [Inject(R, -1)],
    "SYN on an established connection: challenge ACK": [Inject(S, -12345)],
    "old data: duplicate ACK": [Inject(P | A, -5000, 0, 100)],
    "ACK of unsent data: challenge ACK (RFC 5961 5.2)": [Inject(A, 0, 100_000)],
    "data then RST at the new RCV.NXT": [Inject(P | A, 0, 0, 100), Inject(R, 0)],
    "data then RST at the old RCV.NXT: challenge ACK": [Inject(P | A, 0, 0, 100), Inject(R, -100)],
    "RST|ACK at RCV.NXT resets": [Inject(R | A, 0, 0)],
    "FIN, then RST at RCV.NXT-1 in CLOSE_WAIT: reset (EPIPE)": [Inject(F | A, 0, 0), Inject(R, 0)],
    "FIN, then RST at RCV.NXT in CLOSE_WAIT: reset": [Inject(F | A, 0, 0), Inject(R, 1)],
    "FIN, then RST at RCV.NXT+1 in CLOSE_WAIT: challenge ACK": [Inject(F | A, 0, 0), Inject(R, 2)],
    "zero-window probe (SEQ = RCV.NXT-1): ACK": [Inject(A, -1, 0)],
    "two probes 0.25 s apart: the second ACK is rate limited": [Inject(A, -1, 0), Inject(A, -1, 0)],
    # 0.25 s apart: the second challenge ACK falls within tcp_invalid_ratelimit (500 ms)
    "ACK of unsent data twice: rate limited": [Inject(A, 0, 10**5), Inject(A, 0, 10**5)],
}


def _normalise(pkts: list[Packet], host_isn: int, peer_isn: int) -> list[tuple[str, int, int]]:
    return [(flags_to_str(p.flags), (p.seq - host_isn) & MASK, (p.ack - peer_isn) & MASK) for p in pkts]


def _handshake(ep: KernelEndpoint | KplabEndpoint, port: int) -> tuple[int, tuple[object, ...]]:
    syn = Packet(PEER, HOST, TCP, port, 80, S, PEER_ISN, 0, 64240, 0, mss=1460, wscale=7, sackok=True)
    (synack,) = ep.send(syn)
    ep.send(Packet(PEER, HOST, TCP, port, 80, A, PEER_ISN + 1, (synack.seq + 1) & MASK, 502, 0), 0.05)
    ack = (synack.ack - PEER_ISN) & MASK
    shape = (flags_to_str(synack.flags), ack, synack.mss, synack.wscale, synack.sackok, synack.win)
    return synack.seq, shape


def _run_case(ep: KernelEndpoint | KplabEndpoint, port: int, steps: list[Inject]) -> list[object]:
    host_isn, shape = _handshake(ep, port)
    seen: list[object] = [shape]
    sent = 0
    for step in steps:
        seq = (PEER_ISN + 1 + sent + step.seq_off) & MASK
        ack = (host_isn + 1 + step.ack_off) & MASK if step.flags & A else 0
        pkt = Packet(PEER, HOST, TCP, port, 80, step.flags, seq, ack, 502, step.length)
        seen.append(_normalise(ep.send(pkt), host_isn, PEER_ISN))
        if step.seq_off >= 0 and not step.flags & (R | S):
            sent += step.length
    seen.append(ep.state(port))
    return seen


NO_SOCKET = [
    Packet(PEER, HOST, TCP, 40000, 81, A, 1000, 777_777, 100, 0),
    Packet(PEER, HOST, TCP, 40001, 81, S, 5000, 0, 100, 0),
    Packet(PEER, HOST, TCP, 40002, 81, F, 500, 0, 100, 10),
    Packet(PEER, HOST, TCP, 40003, 81, P | A, MASK - 5, 123, 100, 10),
    Packet(PEER, HOST, TCP, 40004, 81, R, 1, 0, 0, 0),
    Packet(PEER, HOST, TCP, 40005, 80, A, 9, 4242, 100, 0),  # ACK at the listener, no connection
]


def _no_socket(ep: KernelEndpoint | KplabEndpoint) -> list[list[tuple[str, int, int]]]:
    return [[(flags_to_str(r.flags), r.seq, r.ack) for r in ep.send(p.copy())] for p in NO_SOCKET]


@pytest.mark.kernel
def test_endpoint_rules_match_the_kernel(lab: Lab) -> None:
    kernel = KernelEndpoint(lab)
    try:
        model = KplabEndpoint(kernel.window_scale())
        mismatches = []
        for i, (name, steps) in enumerate(CASES.items()):
            port = 41000 + i
            want, got = _run_case(kernel, port, steps), _run_case(model, port, steps)
            if want != got:
                mismatches.append(f"{name}: kernel {want} kplab {got}")
        want_rst, got_rst = _no_socket(kernel), _no_socket(model)
        if want_rst != got_rst:
            mismatches.append(f"no socket: kernel {want_rst} kplab {got_rst}")
        assert not mismatches, "\n".join(mismatches)
    finally:
        kernel.close()


# Answers to the kernel's SYN, relative to it: (flags, ack offset from the SYN's ISN + 1).
SYN_SENT_CASES: dict[str, Inject] = {
    "RST|ACK acknowledging the SYN: refused": Inject(R | A, 0, 0),
    "RST|ACK with a wrong ACK: ignored, SYN again at once": Inject(R | A, 0, 5),
    "RST without ACK: ignored": Inject(R, 0, 0),
    "SYN-ACK with a wrong ACK: RST (SEQ = SEG.ACK), SYN again at once": Inject(S | A, 0, 7),
}


def _syn_sent_kernel(client: KernelClient, port: int, answer: Inject) -> list[object]:
    sock, syn = client.connect(port)
    ack = (syn.seq + 1 + answer.ack_off) & MASK
    replies = client.ep.send(Packet(PEER, HOST, TCP, port, syn.sport, answer.flags, 5_000_000, ack, 1000, 0))
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return [[(flags_to_str(p.flags), (p.seq - syn.seq) & MASK, p.ack) for p in replies], error]


def _syn_sent_model(port: int, answer: Inject) -> list[object]:
    stack = TcpStack(TcpConfig(), random.Random(3))
    conn = stack.connect(HOST, PEER, port, 0)
    (syn,) = stack.out
    stack.out.clear()
    ack = (syn.seq + 1 + answer.ack_off) & MASK
    stack.input(Packet(PEER, HOST, TCP, port, syn.sport, answer.flags, 5_000_000, ack, 1000, 0), 1)
    if 0 < conn.next_timer_ns() <= 250_000_000:  # what the kernel side sees within its 0.25 s wait
        stack.on_timer(conn, conn.next_timer_ns())
    replies = [(flags_to_str(p.flags), (p.seq - syn.seq) & MASK, p.ack) for p in stack.out]
    return [replies, conn.error if conn.state == TcpState.CLOSE else 0]


@pytest.mark.kernel
def test_syn_sent_rules_match_the_kernel(lab: Lab) -> None:
    kernel = KernelEndpoint(lab)
    client = KernelClient(kernel)
    try:
        mismatches = []
        for i, (name, answer) in enumerate(SYN_SENT_CASES.items()):
            want, got = _syn_sent_kernel(client, 9000 + i, answer), _syn_sent_model(9000 + i, answer)
            if want != got:
                mismatches.append(f"{name}: kernel {want} kplab {got}")
        assert not mismatches, "\n".join(mismatches)
    finally:
        client.close()
        kernel.close()
