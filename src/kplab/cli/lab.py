"""`kplab lab`: the scenario's cluster in Linux network namespaces (the real kernel as oracle)."""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
from pathlib import Path

import click

from kplab.cli.scenario_opts import PROXY_MODE, scenario_options
from kplab.errors import InputError
from kplab.lab import session
from kplab.lab.netns import PREFIX, LabInterrupted, LabUnavailable, owned_by, require
from kplab.netfilter.conntrack.profiles import HOST
from kplab.repro.causes import CAUSES, Cause
from kplab.repro.matrix import MITIGATIONS, to_markdown
from kplab.repro.variants import FIXES, VARIANTS
from kplab.scenario.load import builtin
from kplab.scenario.schema import Scenario, with_proxy_mode


def _matrix_stage(proxy_mode: str | None) -> Scenario:
    """The embedded one-download scenario the lab's matrix runs on, in kube-proxy's `proxy_mode`."""
    stage = builtin("matrix")
    return with_proxy_mode(stage, proxy_mode) if proxy_mode else stage


def unavailable(exc: LabUnavailable) -> InputError:
    return InputError(str(exc))


def interrupted(exc: LabInterrupted) -> None:
    """SIGINT/SIGTERM: the lab has been cleaned up; say what is left (listed again here, not
    assumed), in one line, exit 130. Another Ctrl-C now would only garble that line: ignored."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    left = sorted({*exc.left, *owned_by(f"{PREFIX}{os.getpid()}-")})
    if left:
        click.echo(f"kplab: interrupted ({exc}); {len(left)} of the lab's namespaces could not be removed "
                   f"({', '.join(left[:3])}{', ...' if len(left) > 3 else ''}): run `kplab lab clean`",
                   err=True)  # fmt: skip
    else:
        click.echo(f"kplab: interrupted ({exc}); the lab's namespaces were removed", err=True)
    sys.exit(130)


def _need_root() -> None:
    try:
        require(("ip",))
    except LabUnavailable as exc:
        raise unavailable(exc) from None
    except LabInterrupted as exc:
        interrupted(exc)


@click.group(name="lab")
def lab() -> None:
    """The real-kernel lab: namespaces, real iptables, conntrack and TCP (needs root)."""


@lab.command()
@scenario_options(seed=False)
@PROXY_MODE
def up(scenario: Scenario, proxy_mode: str | None) -> None:
    """Build the scenario's cluster in network namespaces and leave it up."""
    try:
        state = session.up(with_proxy_mode(scenario, proxy_mode) if proxy_mode else scenario)
    except LabUnavailable as exc:
        raise unavailable(exc) from None
    except LabInterrupted as exc:
        interrupted(exc)
    click.echo(json.dumps(state, allow_nan=False, indent=2, sort_keys=True))


@lab.command()
def down() -> None:
    """Remove the cluster `kplab lab up` built."""
    _need_root()
    removed = session.down()
    click.echo(f"removed {len(removed)} namespaces" if removed else "no lab is up")


@lab.command()
@click.option("--all", "every", is_flag=True,
              help="Also remove those of runs still alive (they fail) and the `lab up` lab.")  # fmt: skip
def clean(every: bool) -> None:
    """Remove the namespaces kplab runs that no longer exist left behind (a kill -9, a crash)."""
    _need_root()
    if every:
        click.echo("kplab: warning: --all removes the namespaces of kplab runs still alive too", err=True)
    removed = session.clean(every=every)
    click.echo(f"removed {len(removed)} namespaces")


@lab.command()
@scenario_options()
@click.option("--fix", type=click.Choice(list(FIXES)), default=None,
              help="Run only this variant (default: all four, as `kplab repro`).")  # fmt: skip
@click.option("--pcap", "pcap_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="tcpdump captures into DIR/<variant>/<node>.pcap.")  # fmt: skip
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@PROXY_MODE
def repro(
    scenario: Scenario, fix: str | None, pcap_dir: Path | None, output: str, proxy_mode: str | None
) -> None:
    """The seed workload on the real kernel: real sockets, the variants of `kplab repro`."""
    from kplab.cli.repro import print_table
    from kplab.lab.repro import run_variants

    if proxy_mode:
        scenario = with_proxy_mode(scenario, proxy_mode)
    names = (FIXES[fix],) if fix else VARIANTS
    try:
        result = run_variants(scenario, names, pcap_dir=pcap_dir)
    except LabUnavailable as exc:
        raise unavailable(exc) from None
    except LabInterrupted as exc:
        interrupted(exc)
    if output == "json":
        click.echo(json.dumps(result, allow_nan=False, indent=2, sort_keys=True))
        return
    print_table(result)
    for note in next(iter(result["variants"].values()))["lab"]["notes"]:
        click.echo(f"note: {note}")


CAUSE_IDS = [c.id for c in CAUSES]


def _causes(ids: tuple[str, ...]) -> tuple[Cause, ...]:
    return tuple(c for c in CAUSES if not ids or c.id in ids)


CAUSE_OPTION = click.option("--cause", "cause_ids", multiple=True, type=click.Choice(CAUSE_IDS),
                            help="Only these rows (repeatable).")  # fmt: skip


@lab.command(name="matrix")
@click.option("--kernel-profile", type=click.Choice([HOST]), default=HOST,
              help="The column the lab fills: the running kernel's.")  # fmt: skip
@CAUSE_OPTION
@click.option("-o", "--output", type=click.Choice(["text", "json", "markdown"]), default="text")
@PROXY_MODE
def matrix_cmd(kernel_profile: str, cause_ids: tuple[str, ...], output: str, proxy_mode: str | None) -> None:
    """Each cause of `kplab matrix` applied to a live download on this kernel, four mitigations."""
    from kplab.lab.matrix import lab_matrix

    try:
        cells, notes = lab_matrix(_matrix_stage(proxy_mode), causes=_causes(cause_ids))
    except LabUnavailable as exc:
        raise unavailable(exc) from None
    except LabInterrupted as exc:
        interrupted(exc)
    if output == "json":
        payload = {"kernel": kernel_profile, "release": platform.release(), "mitigations": list(MITIGATIONS),
                   "cells": [c.as_json() for c in cells], "notes": notes}  # fmt: skip
        click.echo(json.dumps(payload, allow_nan=False, indent=2, sort_keys=True))
        return
    click.echo(to_markdown(cells), nl=False)
    for key, lines in notes.items():
        for line in lines:
            click.echo(f"note ({key}): {line}")


@click.group(name="compare")
def compare() -> None:
    """The emulator next to the real-kernel lab."""


@compare.command(name="matrix")
@CAUSE_OPTION
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@PROXY_MODE
def compare_matrix(cause_ids: tuple[str, ...], output: str, proxy_mode: str | None) -> None:
    """The emulator's host-profile column next to the lab's; exit 1 on any disagreement."""
    from kplab.lab.compare import report
    from kplab.lab.matrix import lab_matrix
    from kplab.repro.matrix import matrix

    causes = _causes(cause_ids)
    base = _matrix_stage(proxy_mode)
    emulator = matrix(base, causes, (HOST,))  # first: it refuses what it cannot run, at once
    try:
        lab_cells, notes = lab_matrix(base, causes=causes)
    except LabUnavailable as exc:
        raise unavailable(exc) from None
    except LabInterrupted as exc:
        interrupted(exc)
    result = report(lab_cells, emulator, notes)
    if output == "json":
        click.echo(json.dumps(result, allow_nan=False, indent=2, sort_keys=True))
    else:
        click.echo(f"{result['cells']} cells compared ({', '.join(result['fields'])})")
        for d in result["disagreements"]:
            click.echo(
                f"  {d['cause']} / {d['mitigation']}: {d['field']}: lab {d['lab']}, emulator {d['emulator']}"
            )
        if not result["disagreements"]:
            click.echo("no disagreement")
    if result["disagreements"]:
        sys.exit(1)  # (click's Exit would be swallowed by main's standalone_mode=False)
