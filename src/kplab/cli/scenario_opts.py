"""The scenario options shared by every command that runs a scenario (`kplab run`, `kplab repro`,
`kplab lab repro`, `kplab lab up`, `kplab matrix`): which scenario, and its seed.

One decorator, so the commands cannot drift apart: the scenario comes from `-f/--file FILE` (or a
`SCENARIO.yaml` argument) or else from an embedded one, and its seed is the file's `seed:` unless
`--seed N` is given. The command receives the loaded `scenario`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from kplab.scenario.load import builtin, load_file
from kplab.scenario.schema import Scenario

Command = Callable[..., None]
PROXY_MODE = click.option("--proxy-mode", type=click.Choice(["iptables", "nftables"]), default=None,
                          help="kube-proxy's mode (default: the scenario's kube_proxy_mode).")  # fmt: skip
SEED = click.option("--seed", type=int, default=None, metavar="N",
                    help="Seed everything with N (default: the scenario's seed).")  # fmt: skip


def load_scenario(scenario_file: str | None, seed: int | None, default: str = "seed") -> Scenario:
    """The scenario of `scenario_file` (or the embedded `default`), with `seed` if one is given."""
    scenario = load_file(scenario_file) if scenario_file else builtin(default)
    return scenario if seed is None else replace(scenario, seed=seed)


def scenario_options(
    *, default: str | None = "seed", seed: bool = True, help: str | None = None
) -> Callable[[Command], Command]:
    """Add the scenario source and `--seed` to a click command; call it with `scenario=`.

    `default`: the embedded scenario used without `-f`; None makes the file a required
    `SCENARIO.yaml` argument instead. `seed`: whether the command takes `--seed`."""

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def with_scenario(*args: Any, scenario_file: str | None, **kwargs: Any) -> None:
            chosen = kwargs.pop("seed", None) if seed else None
            command(*args, scenario=load_scenario(scenario_file, chosen, default or "seed"), **kwargs)

        wrapped: Command = with_scenario
        if seed:
            wrapped = SEED(wrapped)
        if default is None:
            return click.argument("scenario_file", metavar="SCENARIO.yaml", type=click.Path())(wrapped)
        text = help or f"The scenario (default: the embedded {default} scenario)."
        return click.option("-f", "--file", "scenario_file", type=click.Path(), default=None, metavar="FILE",
                            help=text)(wrapped)  # fmt: skip

    return decorate
