"""Errors that reach the user as one line and exit code 2 (bad input), never as a traceback."""

from __future__ import annotations


class InputError(Exception):
    """Bad input: a malformed dump, manifest, pcap, sequence or scenario.

    `str()` is the whole message a user sees, already prefixed with `file:line:` (or
    `file:doc N:`) by whoever raised it.
    """

    exit_code = 2
    MAX_CHARS = 500  # a value quoted whole (a 5,000-character word) must not flood the line

    def __init__(self, message: str = "") -> None:
        text = " ".join(str(message).splitlines())
        if len(text) > self.MAX_CHARS:
            text = text[: self.MAX_CHARS - 3] + "..."
        super().__init__(text)


def located(file: str, line: int | str, message: str) -> InputError:
    """An InputError for `file:line: message`."""
    return InputError(f"{file}:{line}: {message}")
