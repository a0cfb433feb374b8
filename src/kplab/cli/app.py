"""The `kplab` click group: one short module per subcommand, registered in `COMMANDS`."""

from __future__ import annotations

import importlib

import click

from kplab import __version__, _native

# (module under kplab.cli, attribute): each attribute is a click command or group.
COMMANDS: list[tuple[str, str]] = [
    ("demo", "demo"),
    ("trace", "trace"),
    ("run", "run"),
    ("repro", "repro"),
    ("matrix", "matrix_cmd"),
    ("ct", "ct"),
    ("rules", "rules"),
    ("doctor", "doctor"),
    ("lab", "lab"),
    ("lab", "compare"),
    ("sweep", "sweep"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kplab", message=f"%(prog)s %(version)s ({_native.kind()})")
def cli() -> None:
    """kplab: Kubernetes Service networking (kube-proxy, conntrack, TCP), emulated and on the real kernel."""


def _register() -> None:
    for module_name, attr in COMMANDS:
        module = importlib.import_module(f"kplab.cli.{module_name}")
        cli.add_command(getattr(module, attr))


_register()
