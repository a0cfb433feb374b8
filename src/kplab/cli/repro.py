"""`kplab repro`: the seed scenario's four variants side by side (what `make demo` runs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kplab.cli.progress import sim_progress
from kplab.cli.scenario_opts import PROXY_MODE, scenario_options
from kplab.repro.run import run_variants
from kplab.repro.variants import FIXES, VARIANTS
from kplab.scenario.load import source_text
from kplab.scenario.operator import DROP_INVALID_TABLE
from kplab.scenario.schema import Scenario, with_proxy_mode

TITLES = {
    "as_is": "as is",
    "control": "control (pod IPs, no NAT)",
    "drop_invalid": "fix: drop INVALID",
    "be_liberal": "fix: be_liberal=1",
}
ROWS = [
    ("completed", "downloads completed"),
    ("reset", "downloads reset (ECONNRESET)"),
    ("timed_out", "downloads timed out"),
    ("server_resets", "server connections reset"),
    ("client_rsts", "RSTs sent by clients"),
    ("unnated_escapes", "packets that left un-NATed"),
]

NFT_DROP_NOTE = (
    "kube-proxy's nftables mode writes no `ct state invalid` drop; the drop_invalid variant is the "
    "operator's own table:"
)


@click.command()
@scenario_options(help="Run your own scenario instead of the embedded seed scenario.")
@click.option("--fix", type=click.Choice(list(FIXES)), default=None,
              help="Run only this variant (none = as is); default: all four side by side.")  # fmt: skip
@click.option("--show-scenario", is_flag=True, help="Print the scenario YAML that would run, and exit.")
@click.option(
    "--explain", is_flag=True, help="Tell the story of one reset connection, next to a healthy one."
)
@click.option(
    "--diagram",
    "diagram_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --explain: write both flows as SVG and Mermaid files into DIR.",
)
@click.option(
    "--pcap",
    "pcap_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the captures of the run into DIR/<variant>/<node>.pcapng.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@PROXY_MODE
def repro(scenario: Scenario, fix: str | None, show_scenario: bool, explain: bool,
          diagram_dir: Path | None, pcap_dir: Path | None, output: str,
          proxy_mode: str | None) -> None:  # fmt: skip
    """Reproduce the intermittent connection reset of ClusterIP downloads, with the control case and
    both fixes, from the same workload and seed."""
    if show_scenario:
        click.echo(source_text(scenario), nl=False)
        return
    if proxy_mode:
        scenario = with_proxy_mode(scenario, proxy_mode)
    names = (FIXES[fix],) if fix else VARIANTS
    result = _run(scenario, names, pcap_dir, output == "text" and sys.stdout.isatty())
    story = None
    untold = ""
    if explain or diagram_dir is not None:
        from kplab.repro.explain import NoStory
        from kplab.repro.explain import explain as tell

        try:
            story = tell(scenario, diagram_dir)
            result["explain"] = story.as_json()
        except NoStory as exc:
            untold = f"nothing to explain: {exc}"
            result["explain"] = None
        if scenario.kube_proxy_mode == "nftables":
            result["operator_drop_table"] = DROP_INVALID_TABLE
    if output == "json":
        click.echo(json.dumps(result, allow_nan=False, indent=2, sort_keys=True))
        return
    print_table(result)
    if story is not None:
        story.print(Console())
    if untold:
        click.echo(untold)
    if (explain or diagram_dir is not None) and scenario.kube_proxy_mode == "nftables":
        click.echo(f"{NFT_DROP_NOTE}\n\n{DROP_INVALID_TABLE}", nl=False)


def _run(
    scenario: Scenario, names: tuple[str, ...], pcap_dir: Path | None, show_progress: bool
) -> dict[str, Any]:
    if not show_progress:
        return run_variants(scenario, names, pcap_dir=pcap_dir)
    with sim_progress(names, scenario.duration_ns) as tick:
        return run_variants(scenario, names, pcap_dir=pcap_dir, progress=tick)


def print_table(result: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 160)  # piped: do not wrap at 80
    variants = result["variants"]
    table = Table(title=f"{result['scenario']} (seed {result['seed']}): same downloads, four variants")
    table.add_column("")
    for name in variants:
        table.add_column(TITLES.get(name, name), justify="right")
    for key, label in ROWS:
        cells = []
        for v in variants.values():
            value = v[key]
            bad = key in ("reset", "timed_out", "server_resets", "unnated_escapes") and value > 0
            cells.append(f"[bold red]{value}[/]" if bad else str(value))
        table.add_row(label, *cells)
    reasons = sorted({r for v in variants.values() for r in v["invalid_by_reason"]})
    for reason in reasons:
        table.add_row(
            f"INVALID: {reason}", *(str(v["invalid_by_reason"].get(reason, 0)) for v in variants.values())
        )
    console.print(table)
    console.print(
        f"{result['sim_seconds']:.2f} s simulated per variant, {result['packets']} packets, "
        f"{result['wall_seconds']:.1f} s wall"
    )
