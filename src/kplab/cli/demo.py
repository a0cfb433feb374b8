"""`kplab demo`: what `make demo` runs (the main job on embedded defaults)."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Run the main job on its embedded defaults."""
    click.echo("kplab demo: nothing to run yet")
