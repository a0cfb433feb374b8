"""Captures of emulated links: tcpdump on one end of a `Link`, written as pcapng.

The writer (`report.pcapng`) knows packets and blocks only; this module knows links and where a
capture point sits on them.
"""

from __future__ import annotations

from kplab.net.link import Link
from kplab.packet import Packet
from kplab.report.pcapng import PcapngWriter, interface_mac


def capture_link(writer: PcapngWriter, link: Link, end: str = "a", name: str | None = None) -> int:
    """Capture at one end of `link` as tcpdump would on that interface: packets it sends once the
    queue accepted them (so packets later lost on the wire appear), packets it receives when they
    arrive. Returns the interface id."""
    if end not in ("a", "b"):
        raise ValueError(f"link end must be 'a' or 'b', not {end!r}")
    ifname = name or f"{link.name}.{end}"
    if_id = writer.add_interface(ifname)
    here, there = (
        interface_mac(f"{link.name}.{end}"),
        interface_mac(f"{link.name}.{'b' if end == 'a' else 'a'}"),
    )
    outgoing, incoming = (link.a_to_b, link.b_to_a) if end == "a" else (link.b_to_a, link.a_to_b)
    sched = outgoing.sched

    def sent(pkt: Packet) -> None:
        writer.write_packet(if_id, sched.now_ns, pkt, here, there)

    def received(pkt: Packet) -> None:
        writer.write_packet(if_id, sched.now_ns, pkt, there, here)

    outgoing.on_transmit.append(sent)
    incoming.on_deliver.append(received)
    return if_id
