"""Two TCP hosts joined by one link: the harness of the TCP tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.apps import DownloadWorkload, FileServer
from kplab.net import Link
from kplab.packet import Packet, ip
from kplab.scenario.schema import Faults
from kplab.sim import MS, Scheduler, derive_rng
from kplab.tcp import TcpConfig, TcpHost, TcpStack

CLIENT = ip("10.0.0.1")
SERVER = ip("10.0.0.2")


@dataclass
class Pair:
    sched: Scheduler
    link: Link
    client: TcpHost
    server: TcpHost
    wire: list[tuple[int, str, Packet]] = field(default_factory=list)


def make_pair(
    seed: int,
    faults: Faults | None = None,
    rate_bps: int = 1_000_000_000,
    delay_ns: int = 1 * MS,
    queue_packets: int = 1000,
    cfg: TcpConfig | None = None,
    record: bool = False,
) -> Pair:
    sched = Scheduler(derive_rng(seed, "sched"))
    link = Link(sched, "wire", derive_rng(seed, "link"), rate_bps, delay_ns, queue_packets, faults=faults)
    config = cfg or TcpConfig()
    client = TcpHost(sched, TcpStack(config, derive_rng(seed, "client")), link.send_from_a)
    server = TcpHost(sched, TcpStack(config, derive_rng(seed, "server")), link.send_from_b)
    link.attach(client.receive, server.receive)
    pair = Pair(sched, link, client, server)
    if record:
        link.a_to_b.on_transmit.append(lambda p: pair.wire.append((sched.now_ns, "c>s", p.copy())))
        link.b_to_a.on_transmit.append(lambda p: pair.wire.append((sched.now_ns, "s>c", p.copy())))
    return pair


def run_downloads(
    pair: Pair, size: int, parallel: int = 1, seed: int = 0, until_ns: int = 600_000 * MS, **kw: object
) -> DownloadWorkload:
    FileServer(pair.server, SERVER, 80, size)
    work = DownloadWorkload(
        pair.client,
        CLIENT,
        SERVER,
        80,
        derive_rng(seed, "work"),
        size,
        parallel=parallel,
        **kw,  # type: ignore[arg-type]
    )
    pair.sched.run(until_ns=until_ns)
    return work
