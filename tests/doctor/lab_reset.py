"""A real escaped reset in three lab namespaces (client, node, server), captured in the client.

The node DNATs the VIP 192.168.0.2:80 to the server 10.0.1.2:80. Once the connection carries data,
its conntrack entry is deleted on the node (`conntrack -D`, as a timeout or table pressure would).
With nf_conntrack_tcp_loose=1 the server's next segment is picked up as a NEW entry without NAT, so
it reaches the client from 10.0.1.2; the client has no socket for that and RSTs it (seq = the
segment's ACK = the server's rcv_nxt); the RST is tracked and resets the server. The client's next
segment to the VIP is DNATed afresh and the server, which has no socket any more, answers with a
RST that comes back from the VIP.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kplab.diagnose.capture import ACK, RST, SYN, Segment, read
from kplab.lab.netns import Lab, Netns

VIP, CLIENT, SERVER = "192.168.0.2", "10.0.0.2", "10.0.1.2"

SERVER_PY = f"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{SERVER}", 80)); s.listen(1)
print("listening", flush=True)
c, _ = s.accept(); c.sendall(b"hello"); print("sent", flush=True)
sys.stdin.readline(); c.sendall(b"world"); print("sent", flush=True)
sys.stdin.readline()
try:
    c.sendall(b"more"); c.recv(10); c.sendall(b"more")
    print("alive", flush=True)
except OSError as exc:
    print(type(exc).__name__, flush=True)
"""

CLIENT_PY = f"""
import socket, sys
c = socket.create_connection(("{VIP}", 80), timeout=5); print(c.getsockname()[1], flush=True)
print(c.recv(5).decode(), flush=True)
sys.stdin.readline()
try:
    c.sendall(b"ping"); print(c.recv(10), flush=True)
except OSError as exc:
    print(type(exc).__name__, flush=True)
"""


def build(lab: Lab, drop_invalid: bool = False) -> tuple[Netns, Netns, Netns]:
    client, node, server = lab.netns("client"), lab.netns("node"), lab.netns("server")
    lab.veth(client, "eth0", node, "eth-c")
    lab.veth(server, "eth0", node, "eth-s")
    for ns, dev, addr in ((client, "eth0", CLIENT), (node, "eth-c", "10.0.0.1"), (node, "eth-s", "10.0.1.1"),
                          (server, "eth0", SERVER)):  # fmt: skip
        ns.run(["ip", "addr", "add", f"{addr}/24", "dev", dev])
    client.run(["ip", "route", "add", "default", "via", "10.0.0.1"])
    server.run(["ip", "route", "add", "default", "via", "10.0.1.1"])
    node.sysctl("net.ipv4.ip_forward", 1)
    node.run(["iptables", "-t", "nat", "-A", "PREROUTING", "-d", VIP, "-p", "tcp", "--dport", "80",
              "-j", "DNAT", "--to-destination", f"{SERVER}:80"])  # fmt: skip
    node.sysctl("net.netfilter.nf_conntrack_tcp_loose", 1)
    if drop_invalid:
        node.run(["iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"])
    return client, node, server


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def _say(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


@contextlib.contextmanager
def client_capture(client: Netns, pcap: Path) -> Iterator[None]:
    """tcpdump on the client's interface for the duration of the block."""
    # --immediate-mode: without it a veth capture can end with packets still in the ring buffer.
    tcpdump = ["tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-s", "200", "-w", str(pcap), "tcp"]
    dump = client.popen(tcpdump, stderr=subprocess.PIPE, text=True)
    assert dump.stderr is not None
    while "listening on" not in dump.stderr.readline():
        pass
    try:
        yield
    finally:
        dump.send_signal(signal.SIGINT)
        dump.wait(10)


PIPES: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}


def run_reset(lab: Lab, pcap: Path, drop_invalid: bool = False) -> dict[str, str]:
    """Build the lab, make the reset happen, capture it in the client; returns what each side saw."""
    client, node, server = build(lab, drop_invalid)
    with client_capture(client, pcap):
        srv = server.popen([sys.executable, "-c", SERVER_PY], **PIPES)
        try:
            assert _line(srv) == "listening"
            cli = client.popen([sys.executable, "-c", CLIENT_PY], **PIPES)
            port, greeting = _line(cli), _line(cli)
            assert _line(srv) == "sent" and greeting == "hello"
            node.run(["conntrack", "-D", "-p", "tcp", "--orig-dst", VIP])
            return {"port": port, **_finish(srv, cli)}
        finally:
            srv.kill()
            srv.wait(10)


def _finish(srv: subprocess.Popen[str], cli: subprocess.Popen[str]) -> dict[str, str]:
    """The server sends "world"; the client then sends "ping"; the server answers twice."""
    _say(srv)
    assert _line(srv) == "sent"
    _say(cli)
    client_saw = _line(cli)
    _say(srv)
    server_saw = _line(srv)
    cli.wait(10)
    return {"client": client_saw, "server": server_saw}


FORGE_PY = """
import socket, sys, dpkt
src, dst, sport, dport, seq, ack = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=dpkt.tcp.TH_ACK, win=512)
pkt = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, ttl=64, data=tcp)
pkt.len = 20 + len(bytes(tcp))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(bytes(pkt), (dst, 0))
"""


def _segments(pcap: Path) -> list[Segment]:
    return read(pcap.read_bytes(), str(pcap)).segments


def _wait_for(pcap: Path, done: Callable[[list[Segment]], bool]) -> list[Segment]:
    """The capture so far, once `done` holds for it (tcpdump writes a moment after the wire)."""
    for _ in range(500):
        segs = _segments(pcap)
        if done(segs):
            return segs
        time.sleep(0.01)
    raise AssertionError(f"{pcap}: the expected packets were not captured within 5 s")


def run_challenge(lab: Lab, pcap: Path, ack_ahead: int = 1000) -> dict[str, str]:
    """The server's side sends an ACK for `ack_ahead` bytes the client never sent ("ACK is over upper
    bound": INVALID in every era). It escapes un-NATed, the client RSTs it with seq = that ACK, which
    is in the server's window but not its rcv_nxt: a challenge ACK, and the connection lives on."""
    client, _, server = build(lab)
    with client_capture(client, pcap):
        srv = server.popen([sys.executable, "-c", SERVER_PY], **PIPES)
        try:
            assert _line(srv) == "listening"
            cli = client.popen([sys.executable, "-c", CLIENT_PY], **PIPES)
            port, greeting = _line(cli), _line(cli)
            assert _line(srv) == "sent" and greeting == "hello"
            segs = _wait_for(pcap, lambda segs: sum(s.length for s in segs) >= len("hello"))
            syn = next(s for s in segs if s.flags == SYN)
            synack = next(s for s in segs if s.flags == SYN | ACK)
            seq, ack = (synack.seq + 1 + len("hello")) % 2**32, (syn.seq + 1 + ack_ahead) % 2**32
            server.run([sys.executable, "-c", FORGE_PY, SERVER, CLIENT, "80", port, str(seq), str(ack)])
            _wait_for(pcap, lambda segs: any(s.flags & RST for s in segs))
            time.sleep(0.05)  # let the server's later data come well after the challenge ACK
            return {"port": port, **_finish(srv, cli)}
        finally:
            srv.kill()
            srv.wait(10)
