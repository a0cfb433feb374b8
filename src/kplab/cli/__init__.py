"""The `kplab` command (`main`); the click group itself is `kplab.cli.app.cli`.

Bad input (`InputError`) becomes one line on stderr and exit code 2, never a traceback. Ctrl-C,
from the first import on, becomes `kplab: interrupted` and exit code 130: `main` installs its
SIGINT handler before it imports the commands (click would print KeyboardInterrupt over two
lines, and an interrupt during the imports would be a traceback).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any


class Interrupted(BaseException):
    """SIGINT outside the lab (which has its own handlers, restored after it)."""


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def main() -> None:
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        _main()
    except Interrupted:
        print("kplab: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        # The work and its cleanup are done: a late Ctrl-C (a user's second) must not turn the exit
        # into a KeyboardInterrupt. Tests that call main() in-process restore their own handler.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main() -> None:
    import click

    from kplab.cli.app import cli
    from kplab.errors import InputError

    try:
        cli.main(standalone_mode=False)
    except InputError as exc:
        click.echo(f"kplab: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("kplab: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def __getattr__(name: str) -> Any:
    if name == "cli":  # `from kplab.cli import cli` (tests, CliRunner) without importing it at start-up
        from kplab.cli.app import cli

        return cli
    raise AttributeError(name)
