"""A lab node with an nftables ruleset loaded by the real nft, and the kernel's verdict for crafted
packets read from `nft monitor trace` (the oracle of the nft engine).

Two namespaces: `cli` (192.168.0.1, 2001:db8::ff) sends raw IPv4 or IPv6 packets with any source
through a veth to `node` (eth0 192.168.0.2/24, 192.168.1.2/24, 192.168.99.11/24, 2001:db8::1/64,
2001:db8:1::2/64; forwarding on, default routes back to cli). The node also holds `table
ip|ip6 kplabtrace`: `meta nftrace set 1` first in prerouting, and empty base chains last in forward
and input, so every packet's trace ends in a verdict kplab can read: a `drop` (REJECT when the rule
that gave it rejects), or the `kplabtrace` last chain it reached, whose `packet:` line shows the
destination after DNAT. Waits are for events, with a deadline that fails the test; nothing sleeps.
"""

from __future__ import annotations

import ipaddress
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass

from kplab.lab.netns import Lab

NODE_ADDRS = (
    "192.168.0.2/24",
    "192.168.1.2/24",
    "192.168.99.11/24",
    "2001:db8::1/64",
    "2001:db8:1::2/64",
)
CLIENTS = {4: "192.168.0.1", 6: "2001:db8::ff"}
NODE = {4: "192.168.0.2", 6: "2001:db8::1"}
TRACE_TABLES = "".join(
    f"""table {family} kplabtrace {{
\tchain pre {{
\t\ttype filter hook prerouting priority -400; policy accept;
\t\tiifname "eth0" meta nftrace set 1
\t}}
\tchain lastfwd {{
\t\ttype filter hook forward priority 1000; policy accept;
\t}}
\tchain lastin {{
\t\ttype filter hook input priority 1000; policy accept;
\t}}
}}
"""
    for family in ("ip", "ip6")
)
SENDER = r"""
import socket, struct, sys
from kplab.packet import Packet
from kplab.packet.codec import checksum, encode
s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    family, src, dst, proto, sport, dport = (int(w) for w in line.split())
    if family == 4:
        pkt = Packet(src, dst, proto, sport, dport, flags=0x02, win=64240, seq=1)
        s4.sendto(encode(pkt), (socket.inet_ntoa(dst.to_bytes(4, "big")), 0))
    else:
        if proto == 6:
            l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
        else:
            l4 = struct.pack("!HHHH", sport, dport, 8, 0)
        pseudo = src.to_bytes(16, "big") + dst.to_bytes(16, "big") + struct.pack("!IxxxB", len(l4), proto)
        csum = checksum(pseudo + l4) or 0xFFFF
        at = 16 if proto == 6 else 6
        l4 = l4[:at] + struct.pack("!H", csum) + l4[at + 2:]
        head = struct.pack("!IHBB", 6 << 28, len(l4), proto, 64)
        head += src.to_bytes(16, "big") + dst.to_bytes(16, "big")
        s6.sendto(head + l4, (socket.inet_ntop(socket.AF_INET6, dst.to_bytes(16, "big")), 0))
    print("sent", flush=True)
"""
_ID = re.compile(r"^trace id (\S+) (\S+ \S+) (\S+) (.*)$")
DEADLINE_S = 20.0


@dataclass(slots=True)
class KernelOutcome:
    verdict: str  # ACCEPT, DROP, REJECT
    dst: str  # ip:port ([ip6]:port) the packet had when it left the hooks (after DNAT); "" if dropped
    lines: list[str]


class NftNode:
    def __init__(self, lab: Lab, ruleset: str, tag: str = "n") -> None:
        self.node, self.cli = lab.netns(f"{tag}node"), lab.netns(f"{tag}cli")
        lab.veth(self.cli, "eth0", self.node, "eth0")
        for addr in NODE_ADDRS:
            self.node.run(["ip", "addr", "add", addr, "dev", "eth0", *(["nodad"] if ":" in addr else [])])
        self.cli.run(["ip", "addr", "add", f"{CLIENTS[4]}/24", "dev", "eth0"])
        self.cli.run(["ip", "addr", "add", f"{CLIENTS[6]}/64", "dev", "eth0", "nodad"])
        for family in (4, 6):
            self.node.run(["ip", f"-{family}", "route", "add", "default", "via", CLIENTS[family]])
            self.cli.run(["ip", f"-{family}", "route", "add", "default", "via", NODE[family]])
        for key, value in (
            ("net.ipv4.ip_forward", 1),
            ("net.ipv6.conf.all.forwarding", 1),
            ("net.ipv4.conf.all.rp_filter", 0),
            ("net.ipv4.conf.eth0.rp_filter", 0),
        ):
            self.node.sysctl(key, value)
        self.node.run(["nft", "-f", "-"], input=ruleset)
        self.node.run(["nft", "-f", "-"], input=TRACE_TABLES)
        self.lines: queue.Queue[str] = queue.Queue()
        self.monitor = self.node.popen(["nft", "monitor", "trace"], stdout=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        self.sender = self.cli.popen(
            [sys.executable, "-c", SENDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.sport = 20000
        for family in (4, 6):
            self._sync(family)

    def _read(self) -> None:
        assert self.monitor.stdout is not None
        for raw in self.monitor.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def close(self) -> None:
        for proc in (self.sender, self.monitor):
            proc.kill()
            proc.wait()

    def _send(self, family: int, src: int, dst: int, proto: int, sport: int, dport: int) -> None:
        assert self.sender.stdin is not None and self.sender.stdout is not None
        self.sender.stdin.write(f"{family} {src} {dst} {proto} {sport} {dport}\n".encode())
        self.sender.stdin.flush()
        assert self.sender.stdout.readline().startswith(b"sent")

    def _sync(self, family: int) -> None:
        """Send harmless packets until the monitor reports one (it subscribes asynchronously, and
        the first IPv6 packet waits for neighbour discovery)."""
        src, dst = (int(ipaddress.ip_address(a)) for a in (CLIENTS[family], NODE[family]))
        for _ in range(200):
            self.sport += 1
            self._send(family, src, dst, 6, self.sport, 9)
            try:
                self._outcome(family, src, 6, self.sport, timeout=0.5)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"nft monitor trace never reported the IPv{family} sync packets")

    def probe(self, src: int, dst: int, proto: int, dport: int, family: int = 4) -> KernelOutcome:
        self.sport += 1
        self._send(family, src, dst, proto, self.sport, dport)
        return self._outcome(family, src, proto, self.sport, DEADLINE_S)

    def _outcome(self, family: int, src: int, proto: int, sport: int, timeout: float) -> KernelOutcome:
        """The trace of the packet from `src` with this source port, up to its final event."""
        name = {6: "tcp", 17: "udp"}[proto]
        ipname = "ip" if family == 4 else "ip6"
        want = f"{ipname} saddr {ipaddress.ip_address(src)} "
        trace_id: str | None = None
        lines: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no final trace event for {ipaddress.ip_address(src)}:{sport}") from None
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
                return KernelOutcome("REJECT" if re.search(r"\breject\b", rest) else "DROP", "", lines)
            if (
                table == f"{ipname} kplabtrace"
                and chain in ("lastfwd", "lastin")
                and rest.startswith("packet:")
            ):
                daddr = re.search(rf"{ipname} daddr (\S+)", rest)
                dport = re.search(rf"{name} dport (\d+)", rest)
                assert daddr is not None and dport is not None, line
                host = daddr.group(1) if family == 4 else f"[{daddr.group(1)}]"
                return KernelOutcome("ACCEPT", f"{host}:{dport.group(1)}", lines)
