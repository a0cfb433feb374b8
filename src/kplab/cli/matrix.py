"""`kplab matrix`: cause x kernel profile x mitigation, from the emulator."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from kplab.cli.scenario_opts import PROXY_MODE, scenario_options
from kplab.netfilter.conntrack import KERNEL_PROFILES
from kplab.repro.causes import CAUSES
from kplab.repro.matrix import KERNELS, MITIGATIONS, Cell, grid, matrix, to_markdown
from kplab.scenario.schema import Scenario, with_proxy_mode


@click.command(name="matrix")
@scenario_options(default="matrix", seed=False,
                  help="The stage scenario (default: the embedded one-download scenario).")  # fmt: skip
@click.option(
    "--cause",
    "causes",
    multiple=True,
    type=click.Choice([c.id for c in CAUSES]),
    help="Only these rows (repeatable).",
)
@click.option(
    "--kernel",
    "kernels",
    multiple=True,
    type=click.Choice(KERNEL_PROFILES),
    help="Only these kernel profiles (host: this machine's kernel).",
)
@click.option("-o", "--output", type=click.Choice(["text", "json", "markdown"]), default="text")
@PROXY_MODE
def matrix_cmd(
    scenario: Scenario, causes: tuple[str, ...], kernels: tuple[str, ...], output: str, proxy_mode: str | None
) -> None:
    """What each cause does to a ClusterIP download, per kernel profile and mitigation: INVALID seen,
    escaped un-NATed, client RST, server reset, and how the download ended."""
    if proxy_mode:
        scenario = with_proxy_mode(scenario, proxy_mode)
    rows = tuple(c for c in CAUSES if not causes or c.id in causes)
    cells = matrix(scenario, rows, kernels or KERNELS)
    if output == "json":
        payload = {
            "kernels": list(kernels or KERNELS),
            "mitigations": list(MITIGATIONS),
            "causes": [{"id": c.id, "title": c.title, "loose": c.loose} for c in rows],
            "cells": [c.as_json() for c in cells],
        }
        click.echo(json.dumps(payload, allow_nan=False, indent=2, sort_keys=True))
    elif output == "markdown":
        click.echo(to_markdown(cells), nl=False)
    else:
        print_matrix(cells)


def print_matrix(cells: list[Cell]) -> None:
    table = Table(title="cause x kernel x mitigation (emulator)", show_lines=True)
    table.add_column("cause")
    columns, rows = grid(cells)
    short = {"none": "none", "drop-invalid": "drop", "be-liberal": "liberal", "both": "both"}
    for k, m in columns:
        table.add_column(f"{k}\n{short[m]}")
    for cause, cells_of_row in rows:
        row = []
        for c in cells_of_row:
            style = "bold red" if c.server_reset else ("yellow" if c.ended != "completed" else "green")
            marks = [f"INV {c.invalid}" if c.invalid else "", f"esc {c.escaped}" if c.escaped else "",
                     "srv reset" if c.server_reset else ""]  # fmt: skip
            row.append(f"[{style}]{c.ended}[/]\n" + " ".join(x for x in marks if x))
        table.add_row(cause, *row)
    Console().print(table)
