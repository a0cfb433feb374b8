"""`kplab trace`: follow a packet through an iptables-save dump (see kplab.netfilter)."""

from __future__ import annotations

import click


@click.command()
def trace() -> None:
    """Trace a packet through a ruleset."""
    raise click.ClickException("not implemented yet")
