"""`kplab repro --explain`: the story of one reset connection, next to a healthy one.

Two runs of the `as_is` variant (the emulator is deterministic, so the second is the first again):
the first finds a connection a server lost to a RST that followed an un-NATed packet; the second
records every packet of that connection, and of a healthy one, at every place it passed. From
those records come the five packets of the seed's "Connection reset packet flow" and the
"Good packet flow", as text and as sequence diagrams (SVG and Mermaid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kplab.net.cluster import EmulatedCluster
from kplab.net.node import ESCAPED, Node
from kplab.net.pod import Pod
from kplab.net.run import run
from kplab.netfilter.conntrack import CtResult
from kplab.packet import TcpFlags, flags_to_str, fmt_ipport
from kplab.packet.model import Packet
from kplab.report.sequence import Diagram, Message, to_mermaid, to_svg
from kplab.scenario.schema import Scenario
from kplab.sim.scheduler import Scheduler

LANES = ("client pod", "client node", "server pod")


@dataclass(frozen=True, slots=True)
class Event:
    """One packet at one place: a pod sending ("tx") or receiving ("rx"), or a node's decision."""

    time_ns: int
    place: str  # pod or node name
    way: str  # "tx" | "rx" | "node"
    src: str
    dst: str
    flags: int
    seq: int
    ack: int
    length: int
    ct: str = ""  # the node's conntrack verdict (NEW/ESTABLISHED/INVALID/IGNORE ...)
    reason: str = ""
    note: str = ""

    @property
    def label(self) -> str:
        text = f"{self.src} > {self.dst} {flags_to_str(self.flags)} seq={self.seq} ack={self.ack}"
        return text + (f" len={self.length}" if self.length else "")


def _event(
    time_ns: int, place: str, way: str, pkt: Packet, res: CtResult | None = None, note: str = ""
) -> Event:
    return Event(
        time_ns, place, way, fmt_ipport(pkt.src, pkt.sport), fmt_ipport(pkt.dst, pkt.dport), pkt.flags,
        pkt.seq, pkt.ack, pkt.length, res.kind if res is not None else "", (res.reason or "") if res else "",
        note or "; ".join(pkt.notes),
    )  # fmt: skip


class Recorder:
    """Records the packets whose client end is one of `clients` (ip, port), everywhere."""

    def __init__(self, clients: set[tuple[int, int]] | None) -> None:
        self.clients = clients
        self.events: list[Event] = []
        self.escapes: list[tuple[int, int]] = []  # client ends that received un-NATed packets
        self.sched: Scheduler | None = None

    def attach(self, cluster: EmulatedCluster) -> None:
        self.sched = cluster.sched
        for node in cluster.nodes.values():
            node.observers.append(self.on_node)
            node.annotate = self.clients is not None  # the DNAT/INVALID notes of the story
        for pod in cluster.pods.values():
            pod.observers.append(self.on_pod)

    def _wanted(self, pkt: Packet) -> bool:
        c = self.clients
        return c is None or (pkt.src, pkt.sport) in c or (pkt.dst, pkt.dport) in c

    def on_node(
        self, node: Node, pkt: Packet, i: str | None, o: str | None, res: CtResult | None, note: str
    ) -> None:
        if note == ESCAPED:
            self.escapes.append((pkt.dst, pkt.dport))
        if self.clients is not None and self._wanted(pkt):
            self.events.append(_event(self._now(), node.name, "node", pkt, res, note))

    def on_pod(self, pod: Pod, way: str, pkt: Packet) -> None:
        if self.clients is not None and self._wanted(pkt):
            self.events.append(_event(self._now(), pod.name, way, pkt))

    def _now(self) -> int:
        return self.sched.now_ns if self.sched is not None else 0


@dataclass(slots=True)
class Story:
    reset: list[tuple[str, Event]]  # (what happened, the packet there)
    good: list[tuple[str, Event]]
    files: list[str]

    def as_json(self) -> dict[str, Any]:
        def rows(steps: list[tuple[str, Event]]) -> list[dict[str, Any]]:
            return [
                {
                    "step": what,
                    "time_s": e.time_ns / 1e9,
                    "at": e.place,
                    "src": e.src,
                    "dst": e.dst,
                    "flags": flags_to_str(e.flags),
                    "seq": e.seq,
                    "ack": e.ack,
                    "len": e.length,
                    "conntrack": e.ct,
                    "reason": e.reason,
                }
                for what, e in steps
            ]

        return {"reset_flow": rows(self.reset), "good_flow": rows(self.good), "files": self.files}

    def print(self, console: Console) -> None:
        for title, steps in (("Connection reset packet flow", self.reset), ("Good packet flow", self.good)):
            table = Table("#", "time", "where", "packet", "what happened", title=title)
            for n, (what, e) in enumerate(steps, 1):
                detail = f"{what}" + (f" ({e.reason})" if e.reason and e.ct in ("INVALID", "IGNORE") else "")
                table.add_row(str(n), f"{e.time_ns / 1e6:.3f} ms", e.place, e.label, detail)
            console.print(table)
        for path in self.files:
            console.print(f"wrote {path}")


def explain(scenario: Scenario, diagram_dir: Path | None = None) -> Story:
    first = Recorder(None)
    cluster, _ = run(scenario, setup=first.attach)
    reset_end, good_end = _pick(cluster, first.escapes)
    second = Recorder({reset_end, good_end})
    run(scenario, setup=second.attach)
    reset = reset_flow(second.events, reset_end, cluster)
    good = good_flow(second.events, good_end, cluster)
    story = Story(reset, good, [])
    if diagram_dir is not None:
        story.files = write_diagrams(story, diagram_dir)
    return story


def _pick(
    cluster: EmulatedCluster, escapes: list[tuple[int, int]]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """A reset connection that received an un-NATed packet, and a completed one."""
    reset: tuple[int, int] | None = None
    good: tuple[int, int] | None = None
    escaped = set(escapes)
    for name, workloads in cluster.workloads.items():
        ip = cluster.pods[name].ip
        for w in workloads:
            for d in w.downloads:
                end = (ip, d.local_port)
                if reset is None and d.outcome.value == "reset" and end in escaped:
                    reset = end
                if good is None and d.outcome.value == "completed" and end not in escaped:
                    good = end
    if reset is None or good is None:
        raise NoStory("no connection was reset after an un-NATed packet in this run")
    return reset, good


class NoStory(Exception):
    pass


def _find(events: list[Event], after: int, **want: Any) -> Event:
    for e in events:
        if e.time_ns >= after and all(getattr(e, k) == v for k, v in want.items()):
            return e
    raise NoStory(f"no packet with {want} after {after} ns")


def reset_flow(
    events: list[Event], client: tuple[int, int], cluster: EmulatedCluster
) -> list[tuple[str, Event]]:
    client_node = cluster.pods[_pod_of(cluster, client[0])].node
    events = _of_client(events, client)
    escaped = _find(events, 0, place=client_node, note=ESCAPED)
    invalid = escaped  # the node's record carries the conntrack verdict and its reason
    sent = [e for e in events if e.way == "tx" and e.src == escaped.src and e.seq == escaped.seq
            and e.ack == escaped.ack and e.time_ns <= escaped.time_ns]  # fmt: skip
    server_tx = sent[-1] if sent else escaped
    arrived = _find(events, escaped.time_ns, way="rx", src=escaped.src, dst=escaped.dst, seq=escaped.seq)
    rst = _find(events, arrived.time_ns, way="tx", src=escaped.dst, dst=escaped.src, flags=int(TcpFlags.RST))
    killed = _find(events, rst.time_ns, way="rx", src=rst.src, dst=rst.dst, flags=int(TcpFlags.RST))
    return [
        ("the server pod sends a segment to the client", server_tx),
        (f"{invalid.place} conntrack judges it {invalid.ct or 'INVALID'}: no reverse NAT", invalid),
        ("it reaches the client pod from the backend pod's own IP, not the Service IP", arrived),
        ("the client knows no such connection: it answers RST to the pod IP (seq = the segment's ACK)", rst),
        ("a legal pod-to-pod RST with seq == rcv_nxt: the server resets the connection", killed),
    ]


def good_flow(
    events: list[Event], client: tuple[int, int], cluster: EmulatedCluster
) -> list[tuple[str, Event]]:
    client_pod = _pod_of(cluster, client[0])
    client_node = cluster.pods[client_pod].node
    events = _of_client(events, client)
    syn = _find(events, 0, place=client_pod, way="tx", flags=int(TcpFlags.SYN))
    dnat = _find(events, syn.time_ns, place=client_node, way="node", flags=int(TcpFlags.SYN))
    synack = int(TcpFlags.SYN | TcpFlags.ACK)
    reply = _find(events, dnat.time_ns, way="tx", flags=synack)
    undo = _find(events, reply.time_ns, place=client_node, way="node", flags=synack)
    back = _find(events, undo.time_ns, place=client_pod, way="rx", flags=synack)
    return [
        ("the client pod sends to the Service IP", syn),
        ("the client node DNATs it to a backend pod", dnat),
        ("the server pod answers the client", reply),
        ("conntrack recognises the reply and rewrites its source back to the Service IP", undo),
        ("the client pod receives it from the Service IP", back),
    ]


def _of_client(events: list[Event], client: tuple[int, int]) -> list[Event]:
    end = fmt_ipport(*client)
    return [e for e in events if end in (e.src, e.dst)]


def _pod_of(cluster: EmulatedCluster, addr: int) -> str:
    return next(name for name, pod in cluster.pods.items() if pod.ip == addr)


def _lane(e: Event, client_pods: set[str]) -> str:
    if e.way == "node":
        return "client node"
    return "client pod" if e.place in client_pods else "server pod"


def diagrams(story: Story) -> tuple[Diagram, Diagram]:
    reset_steps = [e for _, e in story.reset]
    server_tx, invalid, arrived, rst, killed = reset_steps
    reason = invalid.reason or invalid.ct
    reset = Diagram(
        "Connection reset packet flow",
        LANES,
        (
            Message(
                server_tx.time_ns,
                "server pod",
                "client node",
                server_tx.label,
                f"conntrack INVALID: {reason}",
            ),
            Message(
                arrived.time_ns, "client node", "client pod", arrived.label, "not reverse-NATed", bad=True
            ),
            Message(
                rst.time_ns,
                "client pod",
                "server pod",
                rst.label,
                f"no socket: RST to the pod IP; it resets the server at {killed.time_ns / 1e6:.3f} ms",
                bad=True,
            ),
        ),
    )
    syn, dnat, reply, undo, back = (e for _, e in story.good)
    good = Diagram(
        "Good packet flow",
        LANES,
        (
            Message(syn.time_ns, "client pod", "client node", syn.label),
            Message(dnat.time_ns, "client node", "server pod", dnat.label, dnat.note.split(";")[0] or "DNAT"),
            Message(reply.time_ns, "server pod", "client node", reply.label),
            Message(back.time_ns, "client node", "client pod", back.label, undo.note or "reverse NAT"),
        ),
    )
    return reset, good


def write_diagrams(story: Story, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for diagram, stem in zip(diagrams(story), ("reset-flow", "good-flow"), strict=True):
        for suffix, render in ((".svg", to_svg), (".mmd", to_mermaid)):
            path = directory / f"{stem}{suffix}"
            path.write_text(render(diagram))
            written.append(str(path))
    return written
