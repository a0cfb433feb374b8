"""The wire length of an ICMP error, from the real kernel: REJECT answers through icmp_send, which
quotes as much of the rejected datagram as fits in 576 bytes. `kplab.packet.ip_length` (what the
emulator's links serialise and conntrack accounts) must say the same."""

from __future__ import annotations

import sys

import pytest

from kplab.lab.netns import Lab
from kplab.packet import ICMP, UDP, Packet, ip, ip_length

pytestmark = pytest.mark.kernel

# Sends one UDP datagram of argv[1] payload bytes to 10.9.0.2:9 and prints the IPv4 total length of
# the ICMP error that comes back (a raw ICMP socket receives it with its IP header).
PROBE = """
import socket, struct, sys
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
raw.settimeout(10)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("10.9.0.1", 40000))
udp.sendto(bytes(int(sys.argv[1])), ("10.9.0.2", 9))
while True:
    data = raw.recv(65535)
    if data[20] == 3:  # destination unreachable
        print(struct.unpack("!H", data[2:4])[0], len(data))
        break
"""


def test_reject_quotes_at_most_548_bytes_like_ip_length(lab: Lab) -> None:
    client, server = lab.netns("icmpc"), lab.netns("icmps")
    lab.veth(client, "eth0", server, "eth0")
    client.run(["ip", "addr", "add", "10.9.0.1/24", "dev", "eth0"])
    server.run(["ip", "addr", "add", "10.9.0.2/24", "dev", "eth0"])
    server.sysctl("net.ipv4.icmp_ratelimit", 0)  # this namespace's own limit: one error per probe
    server.run(["iptables", "-A", "INPUT", "-p", "udp", "--dport", "9", "-j", "REJECT"])
    for payload in (100, 1400):
        out = client.run([sys.executable, "-c", PROBE, str(payload)], timeout=30).stdout.split()
        total, received = int(out[0]), int(out[1])
        datagram = Packet(ip("10.9.0.1"), ip("10.9.0.2"), UDP, 40000, 9, length=payload)
        error = Packet(datagram.dst, datagram.src, ICMP, icmp_type=3, icmp_code=3, inner=datagram)
        assert total == received == ip_length(error), payload
    assert ip_length(error) == 576  # the 1400-byte datagram's error is cut at 576 bytes
