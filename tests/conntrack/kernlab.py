"""The real-kernel side of the differential test: the seed's topology in three lab namespaces.

client (10.0.0.2) --veth-- node (10.0.0.1 | 10.0.1.1, ip_forward, DNAT VIP -> pod) --veth-- server (10.0.1.2)

Segments are crafted with `kplab.packet.codec` and sent from raw sockets; what leaves the node is
read from AF_PACKET sockets on the far side. The node's mangle POSTROUTING writes each packet's
ctstate into its DSCP, so the capture says both the NAT applied and the ctstate. The client's and
server's own TCP stacks never answer: INPUT drops all TCP in those two namespaces. Entry state
comes from the node's /proc/net/nf_conntrack, the invalid counter from /proc/net/stat/nf_conntrack.
Sockets and /proc files are opened inside a namespace with setns(2) (this thread only).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from typing import Any

from kplab.lab.inside import inside
from kplab.lab.netns import Lab, Netns
from kplab.netfilter.conntrack.replay import (
    CLIENT,
    POD,
    VIP,
    Action,
    Segment,
    Step,
    flow_tuples,
    to_packet,
)
from kplab.packet import Packet, codec, fmt_ip, fmt_ipport

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
DSCP = {1: "NEW", 2: "ESTABLISHED", 3: "RELATED", 4: "INVALID", 5: "UNTRACKED"}


def _mac(ns: Netns, ifname: str) -> str:
    return ns.read(f"/sys/class/net/{ifname}/address").strip()


class KernelNode:
    """The three namespaces, raw sockets and readers. Use as a context manager."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.last_acct: list[int] | None = None
        self.client = lab.netns("client")
        self.node = lab.netns("node")
        self.server = lab.netns("server")
        lab.veth(self.client, "c0", self.node, "n0")
        lab.veth(self.server, "s0", self.node, "n1")
        self._addresses()
        self._rules()
        with inside(self.client):
            self.client_tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.client_rx = self._capture("c0")
        with inside(self.server):
            self.server_tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.server_rx = self._capture("s0")

    def _addresses(self) -> None:
        c, n, s = self.client, self.node, self.server
        c.run(["ip", "addr", "add", "10.0.0.2/24", "dev", "c0"])
        n.run(["ip", "addr", "add", "10.0.0.1/24", "dev", "n0"])
        n.run(["ip", "addr", "add", "10.0.1.1/24", "dev", "n1"])
        s.run(["ip", "addr", "add", "10.0.1.2/24", "dev", "s0"])
        for ns, ifname in ((c, "c0"), (n, "n0"), (n, "n1"), (s, "s0")):
            ns.run(["ip", "link", "set", "dev", ifname, "mtu", "65535"])
        c.run(["ip", "route", "add", "default", "via", "10.0.0.1"])
        s.run(["ip", "route", "add", "default", "via", "10.0.1.1"])
        pairs = ((c, "c0", n, "n0", "10.0.0.1", "10.0.0.2"), (s, "s0", n, "n1", "10.0.1.1", "10.0.1.2"))
        for end, end_if, node, node_if, node_ip, end_ip in pairs:
            end.run(["ip", "neigh", "replace", node_ip, "lladdr", _mac(node, node_if), "dev", end_if])
            node.run(["ip", "neigh", "replace", end_ip, "lladdr", _mac(end, end_if), "dev", node_if])
        # An un-DNATed packet to the VIP (INVALID) is forwarded towards the server side, as a
        # node's default route would; the capture there shows it leaving without NAT.
        n.run(["ip", "route", "add", f"{fmt_ip(VIP)}/32", "dev", "n1"])
        n.run(["ip", "neigh", "replace", fmt_ip(VIP), "lladdr", _mac(s, "s0"), "dev", "n1"])
        n.sysctl("net.ipv4.ip_forward", 1)
        for ns in (c, n, s):
            ns.sysctl("net.ipv4.conf.all.rp_filter", 0)

    def _rules(self) -> None:
        rules = [
            "*mangle",
            *(
                f"-A POSTROUTING -m conntrack --ctstate {name} -j DSCP --set-dscp {code}"
                for code, name in DSCP.items()
            ),
            "COMMIT",
            "*nat",
            f"-A PREROUTING -d {fmt_ip(VIP)}/32 -p tcp --dport 80 -j DNAT --to-destination {fmt_ip(POD)}:80",
            "COMMIT",
            "*filter",
            ":FORWARD ACCEPT [0:0]",
            "COMMIT",
        ]
        self.node.run(["iptables-restore"], input="\n".join(rules) + "\n")
        for end in (self.client, self.server):
            for proto in ("tcp", "udp"):
                end.run(["iptables", "-A", "INPUT", "-p", proto, "-j", "DROP"])

    @staticmethod
    def _capture(ifname: str) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        sock.bind((ifname, ETH_P_IP))
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        for sock in (self.client_tx, self.client_rx, self.server_tx, self.server_rx):
            sock.close()

    # -- per sequence -------------------------------------------------------------------------
    def configure(self, sysctls: dict[str, int], drop_invalid: bool) -> None:
        defaults = {
            "nf_conntrack_acct": 1,
            "nf_conntrack_tcp_loose": 1,
            "nf_conntrack_tcp_be_liberal": 0,
            "nf_conntrack_tcp_ignore_invalid_rst": 0,
            "nf_conntrack_tcp_max_retrans": 3,
        }
        with inside(self.node):
            for key, value in (defaults | sysctls).items():
                with open(f"/proc/sys/net/netfilter/{key}", "w") as f:
                    f.write(str(value))
        self.node.run(["iptables", "-F", "FORWARD"])
        if drop_invalid:
            self.node.run(
                ["iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"]
            )
        self.node.run(["conntrack", "-F"], check=False)

    def invalid_count(self) -> int:
        with inside(self.node), open("/proc/net/stat/nf_conntrack") as f:
            lines = f.read().splitlines()
        column = lines[0].split().index("invalid")
        return sum(int(line.split()[column], 16) for line in lines[1:])

    def entry(self, client_port: int) -> dict[str, Any]:
        """The flow's entry as /proc/net/nf_conntrack shows it (state, seconds left, ASSURED)."""
        with inside(self.node), open("/proc/net/nf_conntrack") as f:
            lines = f.read().splitlines()
        first_tuples = {
            f"src={fmt_ip(t.src)} dst={fmt_ip(t.dst)} sport={t.sport} dport={t.dport}": rank
            for rank, t in enumerate(flow_tuples(client_port))
        }
        found: dict[int, dict[str, Any]] = {}
        counters: dict[int, list[int]] = {}
        for line in lines:
            fields = line.split()
            rank = first_tuples.get(" ".join(fields[6:10])) if fields[2] == "tcp" else None
            if rank is not None:
                found[rank] = {
                    "state": fields[5],
                    "timeout_s": int(fields[4]),
                    "assured": "[ASSURED]" in fields,
                }
                counters[rank] = [
                    int(f.split("=")[1]) for f in fields if f.startswith(("packets=", "bytes="))
                ]
        if found:
            self.last_acct = counters[min(found)] or None
            return found[min(found)]
        self.last_acct = None
        return {"state": None, "timeout_s": None, "assured": False}

    def send(self, seg: Segment, isn_orig: int, isn_reply: int, client_port: int) -> dict[str, Any]:
        """Send one segment; what came out of the node (or nothing within the wait)."""
        pkt = to_packet(seg, isn_orig, isn_reply, client_port)
        orig = seg.dir == "orig"
        tx, rx = (self.client_tx, self.server_rx) if orig else (self.server_tx, self.client_rx)
        _drain(rx)
        tx.sendto(codec.encode(pkt), (fmt_ip(pkt.dst), 0))
        got = _receive(rx, 0.25)
        if got is None:
            return {"verdict": "DROP", "ctstate": None, "nat": None}
        out = codec.decode(got)
        tos = int(out.notes[0].removeprefix("tos="))
        nat = out.src == VIP if not orig else out.dst == POD
        return {
            "verdict": "ACCEPT",
            "ctstate": DSCP.get(tos >> 2, f"tos={tos}"),
            "nat": nat,
            "out_src": fmt_ipport(out.src, out.sport),
            "out_dst": fmt_ipport(out.dst, out.dport),
        }

    def send_packet(self, pkt: Packet, from_client: bool) -> Packet | None:
        """Send any packet (TCP or UDP) from the client or the server; what left the node, if any."""
        tx, rx = (self.client_tx, self.server_rx) if from_client else (self.server_tx, self.client_rx)
        _drain(rx)
        tx.sendto(codec.encode(pkt), (fmt_ip(pkt.dst), 0))
        got = _receive(rx, 0.25, pkt.proto)
        return codec.decode(got) if got is not None else None

    def conntrack_lines(self) -> list[str]:
        with inside(self.node), open("/proc/net/nf_conntrack") as f:
            return f.read().splitlines()

    def replay(
        self, steps: list[Step], isn_orig: int, isn_reply: int, client_port: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, step in enumerate(steps):
            if isinstance(step, Action):
                if step.action == "ct-delete":
                    self.node.run(["conntrack", "-F"], check=False)
                else:
                    time.sleep(step.seconds)
                out.append({"i": i, "action": step.action})
                continue
            before = self.invalid_count()
            seen = self.send(step, isn_orig, isn_reply, client_port)
            seen["invalid_delta"] = self.invalid_count() - before
            seen["entry"] = self.entry(client_port)
            seen["acct"] = self.last_acct
            seen["i"] = i
            out.append(seen)
        return out


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.recvfrom(65535)


def _receive(sock: socket.socket, wait: float, proto: int = 6) -> bytes | None:
    """The first incoming packet of `proto` for the client/server (our own transmissions skipped)."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return None
        data, addr = sock.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING or len(data) < 20 or data[9] != proto:
            continue
        dst = int.from_bytes(data[16:20], "big")
        if dst in (CLIENT, POD, VIP):
            return data
