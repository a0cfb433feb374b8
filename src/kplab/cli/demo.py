"""`kplab demo`: what `make demo` runs: `kplab repro` on the embedded seed scenario."""

from __future__ import annotations

import click

from kplab.cli.repro import repro


@click.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Reproduce the seed scenario's connection resets, with the control case and both fixes."""
    ctx.invoke(repro)
