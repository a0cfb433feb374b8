"""`kplab ARGS` run in the test's own process through the real entry point (`kplab.cli.main`)."""

from __future__ import annotations

import signal
import sys

import pytest

from kplab.cli import main


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `kplab ARGS`; sys.argv and the SIGINT handler are restored."""
    old, handler = sys.argv, signal.getsignal(signal.SIGINT)
    sys.argv = ["kplab", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
        signal.signal(signal.SIGINT, handler)  # main() leaves Ctrl-C ignored on its way out
    captured = capsys.readouterr()
    return code, captured.out, captured.err
