"""`kplab run SCENARIO.yaml`: run a scenario in the emulator and summarise what happened."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kplab.cli.progress import sim_progress
from kplab.cli.scenario_opts import scenario_options
from kplab.net.run import run as run_scenario
from kplab.scenario.schema import Scenario


@click.command()
@scenario_options(default=None)
@click.option(
    "--pcap",
    "pcap_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write one pcapng per node into DIR (created if needed).",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def run(scenario: Scenario, pcap_dir: Path | None, output: str) -> None:
    """Run SCENARIO.yaml in the emulator: outcomes per connection, conntrack counters with INVALID
    reasons per node, drops per link, TCP counters per pod."""
    if output == "text" and sys.stdout.isatty():
        with sim_progress(("simulating",), scenario.duration_ns) as tick:
            _, result = run_scenario(
                scenario, pcap_dir=pcap_dir, progress=lambda now, end: tick("simulating", now, end)
            )
    else:
        _, result = run_scenario(scenario, pcap_dir=pcap_dir)
    if output == "json":
        click.echo(json.dumps(result, allow_nan=False, indent=2, sort_keys=True))
        return
    print_summary(result)


def print_summary(result: dict[str, Any]) -> None:
    console = Console()
    r = result
    console.print(
        f"[bold]{r['scenario']}[/] seed {r['seed']}: {r['sim_seconds']:.2f} s simulated, "
        f"{r['packets']} packets, {r['wall_seconds']:.1f} s wall"
    )
    console.print("outcomes: " + ", ".join(f"{k} {v}" for k, v in result["outcomes"].items()))
    conns = Table("client", "port", "target", "outcome", "bytes", "start s", "end s", title="connections")
    for c in result["connections"]:
        conns.add_row(c["client"], str(c["local_port"]), c["target"], c["outcome"], str(c["bytes"]),
                      f"{c['start_s']:.3f}", "" if c["end_s"] is None else f"{c['end_s']:.3f}")  # fmt: skip
    console.print(conns)
    nodes = Table("node", "forwarded", "escaped un-NATed", "INVALID by reason", "drops", title="nodes")
    for name, n in result["nodes"].items():
        reasons = "\n".join(f"{v} {k}" for k, v in n["invalid_by_reason"].items()) or "-"
        drops = "\n".join(f"{v} {k}" for k, v in n["drops"].items()) or "-"
        nodes.add_row(name, str(n["forwarded"]), str(n["unnated_escapes"]), reasons, drops)
    console.print(nodes)
    links = Table("link", "delivered", "drops", title="links")
    for name, link in result["links"].items():
        links.add_row(
            name, str(link["delivered"]), ", ".join(f"{k} {v}" for k, v in link["drops"].items()) or "-"
        )
    console.print(links)
    tcp = Table("pod", "counters (nstat)", title="TCP")
    for name, counters in result["tcp"].items():
        tcp.add_row(name, ", ".join(f"{k} {v}" for k, v in counters.items()))
    console.print(tcp)
    b = result["books"]
    verdict = "balanced" if b["balanced"] else "NOT balanced"
    console.print(
        f"books: sent {b['sent']} + duplicated {b['duplicated']} = delivered {b['delivered']} + dropped "
        f"{b['dropped']} + in flight {b['in_flight']}: {verdict}"
    )
