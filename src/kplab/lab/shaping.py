"""Link shaping with the qdiscs this kernel has.

A scenario link has a rate, a propagation delay, a queue length and seeded faults. `netem` can do
all of it (delay, jitter, loss, duplication, reordering, rate, limit); `tbf` only rate and queue.
`Shaper.probe` checks which qdiscs the kernel offers (inside a lab namespace) and `notes` says
what the lab cannot reproduce on this kernel, so a report never claims a shaping it did not do.
Links at 10 Gbit/s or more are left unshaped: a veth is faster than the emulator's fastest link.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from kplab.lab.inside import inside
from kplab.lab.netns import Netns
from kplab.scenario.schema import LinkSpec, Scenario

UNSHAPED_BPS = 10_000_000_000
FRAME_BYTES = 1514
DUMMY_ETHERTYPE = 0x88B5
# The slowest rate whose one-frame bucket tc can still express (burst/rate < ~270 s in its ticks).
PAUSE_RATE = "100bit"


@dataclass(frozen=True, slots=True)
class Shaper:
    tbf: bool
    netem: bool

    @classmethod
    def probe(cls, ns: Netns) -> Shaper:
        """Which qdiscs can be attached (tried on the namespace's loopback, then removed)."""
        found = {}
        for kind, args in (("tbf", ["rate", "1gbit", "burst", "32kb", "limit", "100kb"]), ("netem", [])):
            proc = ns.run(["tc", "qdisc", "add", "dev", "lo", "root", kind, *args], check=False)
            found[kind] = proc.returncode == 0
            ns.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
        return cls(found["tbf"], found["netem"])

    def notes(self, s: Scenario) -> list[str]:
        out = []
        for name, spec in (("pod", s.pod_link), ("fabric", s.fabric_link)):
            f = spec.faults
            wants_netem = bool(spec.delay_ns or f.loss or f.duplicate or f.slow_share or f.jitter_ns)
            if wants_netem and not self.netem:
                out.append(f"{name} links: delay/loss/duplication/reordering need netem, which this kernel "
                           "lacks: not applied (veth latency only)")  # fmt: skip
            if spec.rate_bps < UNSHAPED_BPS and not (self.tbf or self.netem):
                out.append(f"{name} links: no rate-limiting qdisc (tbf, netem) in this kernel: not applied")
        return out

    def apply(self, ns: Netns, ifname: str, spec: LinkSpec) -> None:
        """Shape the egress of `ifname` in `ns` as far as this kernel allows."""
        args = self.qdisc_args(spec)
        if args:
            ns.run(["tc", "qdisc", "replace", "dev", ifname, "root", *args])

    def pause(self, ns: Netns, ifname: str, spec: LinkSpec) -> None:
        """Hold the egress of `ifname`: nothing leaves, everything queues (nothing is dropped up to
        the link's queue), until `resume` lets the queue go, in order.

        A token bucket at PAUSE_RATE whose first tokens are eaten by three dummy frames (ethertype
        0x88B5, "local experimental", which the receiving node ignores): the later ones wait
        at the head of the queue, so no real packet slips through on leftover tokens. At that
        rate each dummy holds the head for about two minutes, however slow the machine: a hold
        never leaks (at 8 kbit/s it did after 3 s, which a loaded machine reached)."""
        ns.run(["tc", "qdisc", "replace", "dev", ifname, "root", "tbf", "rate", PAUSE_RATE, "burst",
                str(FRAME_BYTES + 64), "limit", str(_limit(spec))])  # fmt: skip
        _dummy_frames(ns, ifname, 3)

    def resume(self, ns: Netns, ifname: str, spec: LinkSpec) -> None:
        """Release the held queue (same qdisc kind and limit: the kernel keeps its packets) at the
        link's rate, and kick the qdisc (a dummy frame) so the queue drains at once."""
        rate = spec.rate_bps if spec.rate_bps < UNSHAPED_BPS else 100 * UNSHAPED_BPS
        burst = max(2 * FRAME_BYTES, rate // 8 // 250)
        ns.run(["tc", "qdisc", "replace", "dev", ifname, "root", "tbf", "rate", f"{rate}bit", "burst",
                str(burst), "limit", str(_limit(spec))])  # fmt: skip
        _dummy_frames(ns, ifname, 1)

    def qdisc_args(self, spec: LinkSpec) -> list[str]:
        f = spec.faults
        limit = max(spec.queue_packets, 1)
        if self.netem and (spec.delay_ns or f.loss or f.duplicate or f.slow_share or f.jitter_ns):
            args = ["netem", "limit", str(limit), "delay", f"{spec.delay_ns // 1000}us"]
            if f.jitter_ns:
                args.append(f"{f.jitter_ns // 1000}us")
            if f.loss:
                args += ["loss", f"{f.loss * 100:.6f}%"]
            if f.duplicate:
                args += ["duplicate", f"{f.duplicate * 100:.6f}%"]
            if f.slow_share:
                args += ["reorder", f"{(1 - f.slow_share) * 100:.6f}%"]
            if spec.rate_bps < UNSHAPED_BPS:
                args += ["rate", f"{spec.rate_bps}bit"]
            return args
        if self.tbf and spec.rate_bps < UNSHAPED_BPS:
            burst = max(2 * FRAME_BYTES, spec.rate_bps // 8 // 250)  # at least one jiffy's worth at HZ=250
            return ["tbf", "rate", f"{spec.rate_bps}bit", "burst", str(burst), "limit", str(_limit(spec))]
        return []


def _limit(spec: LinkSpec) -> int:
    return max(spec.queue_packets, 1) * FRAME_BYTES


def _dummy_frames(ns: Netns, ifname: str, count: int) -> None:
    """Full-size Ethernet frames nobody listens to, sent out of `ifname` through its qdisc."""
    with inside(ns), socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", DUMMY_ETHERTYPE)
        for _ in range(count):
            sock.send(frame + b"\0" * (FRAME_BYTES - len(frame)))
