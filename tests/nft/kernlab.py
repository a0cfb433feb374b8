"""A lab node with an nftables ruleset loaded by the real nft, and the kernel's verdict for crafted
packets read from `nft monitor trace` (the oracle of the nft engine).

Two namespaces: `cli` (192.168.0.1) sends raw IPv4 packets with any source through a veth to `node`
(eth0 192.168.0.2/24, 192.168.1.2/24, 192.168.99.11/24, forwarding on, default route back to cli).
The node also holds `table ip kplabtrace`: `meta nftrace set 1` first in prerouting, and empty
base chains last in forward and input, so every packet's trace ends in a verdict kplab can read:
a `drop` (REJECT when the rule that gave it rejects), or the `kplabtrace` last chain it reached,
whose `packet:` line shows the destination after DNAT. Waits are for events, with a deadline that
fails the test; nothing sleeps.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass

from kplab.lab.netns import Lab, Netns

NODE_ADDRS = ("192.168.0.2/24", "192.168.1.2/24", "192.168.99.11/24")
CLIENT = "192.168.0.1"
TRACE_TABLE = """table ip kplabtrace {
\tchain pre {
\t\ttype filter hook prerouting priority -400; policy accept;
\t\tiifname "eth0" meta nftrace set 1
\t}
\tchain lastfwd {
\t\ttype filter hook forward priority 1000; policy accept;
\t}
\tchain lastin {
\t\ttype filter hook input priority 1000; policy accept;
\t}
}
"""
SENDER = r"""
import socket, sys
from kplab.packet import Packet
from kplab.packet.codec import encode
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    src, dst, proto, sport, dport = line.split()
    pkt = Packet(int(src), int(dst), int(proto), int(sport), int(dport), flags=0x02, win=64240, seq=1)
    s.sendto(encode(pkt), (socket.inet_ntoa(int(dst).to_bytes(4, "big")), 0))
    print("sent", flush=True)
"""
_ID = re.compile(r"^trace id (\S+) (\S+ \S+) (\S+) (.*)$")
DEADLINE_S = 20.0


@dataclass(slots=True)
class KernelOutcome:
    verdict: str  # ACCEPT, DROP, REJECT
    dst: str  # ip:port the packet had when it left the hooks (after DNAT), "" when dropped
    lines: list[str]


class NftNode:
    def __init__(self, lab: Lab, ruleset: str, tag: str = "n") -> None:
        self.node, self.cli = lab.netns(f"{tag}node"), lab.netns(f"{tag}cli")
        lab.veth(self.cli, "eth0", self.node, "eth0")
        for addr in NODE_ADDRS:
            self.node.run(["ip", "addr", "add", addr, "dev", "eth0"])
        self.node.run(["ip", "route", "add", "default", "via", CLIENT])
        for key in ("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.eth0.rp_filter"):
            self.node.sysctl(key, 1 if key.endswith("forward") else 0)
        self.cli.run(["ip", "addr", "add", f"{CLIENT}/24", "dev", "eth0"])
        self.cli.run(["ip", "route", "add", "default", "via", "192.168.0.2"])
        self.node.run(["nft", "-f", "-"], input=ruleset)
        self.node.run(["nft", "-f", "-"], input=TRACE_TABLE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.monitor = self.node.popen(["nft", "monitor", "trace"], stdout=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        self.sender = self.cli.popen(
            [sys.executable, "-c", SENDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.sport = 20000
        self._sync()

    def _read(self) -> None:
        assert self.monitor.stdout is not None
        for raw in self.monitor.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def close(self) -> None:
        for proc in (self.sender, self.monitor):
            proc.kill()
            proc.wait()

    def _send(self, src: int, dst: int, proto: int, sport: int, dport: int) -> None:
        assert self.sender.stdin is not None and self.sender.stdout is not None
        self.sender.stdin.write(f"{src} {dst} {proto} {sport} {dport}\n".encode())
        self.sender.stdin.flush()
        assert self.sender.stdout.readline().startswith(b"sent")

    def _sync(self) -> None:
        """Send harmless packets until the monitor reports one (it subscribes asynchronously)."""
        for _ in range(200):
            self.sport += 1
            sport = self.sport
            self._send(0xC0A80001, 0xC0A80002, 6, sport, 9)
            try:
                self._outcome(0xC0A80001, 6, sport, timeout=0.5)
                return
            except TimeoutError:
                continue
        raise TimeoutError("nft monitor trace never reported the sync packets")

    def probe(self, src: int, dst: int, proto: int, dport: int) -> KernelOutcome:
        self.sport += 1
        self._send(src, dst, proto, self.sport, dport)
        return self._outcome(src, proto, self.sport, DEADLINE_S)

    def _outcome(self, src: int, proto: int, sport: int, timeout: float) -> KernelOutcome:
        """The trace of the packet from `src` with this source port, up to its final event."""
        name = {6: "tcp", 17: "udp"}[proto]
        want = f"ip saddr {_ip(src)} "
        trace_id: str | None = None
        lines: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no final trace event for {_ip(src)}:{sport}") from None
            found = _ID.match(line)
            if found is None:
                continue
            tid, table, chain, rest = found.groups()
            if trace_id is None:
                if rest.startswith("packet:") and want in rest and f"{name} sport {sport} " in rest + " ":
                    trace_id = tid
                else:
                    continue
            if tid != trace_id:
                continue
            lines.append(line)
            if rest.endswith("(verdict drop)") or rest == "verdict drop" or rest.startswith("policy drop"):
                return KernelOutcome("REJECT" if " reject" in f" {rest}" else "DROP", "", lines)
            if table == "ip kplabtrace" and chain in ("lastfwd", "lastin") and rest.startswith("packet:"):
                daddr = re.search(r"ip daddr (\S+)", rest)
                dport = re.search(rf"{name} dport (\d+)", rest)
                assert daddr is not None and dport is not None, line
                return KernelOutcome("ACCEPT", f"{daddr.group(1)}:{dport.group(1)}", lines)


def _ip(value: int) -> str:
    return ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))


def netns_of(node: NftNode) -> Netns:
    return node.node
