"""Split one iptables-restore line into words, the way iptables-restore does.

Mirrors `add_param_to_argv` (iptables, xshared.c): words are separated by blanks (space, tab,
newline only); a double quote opens quoting (what came before it joins the word), inside quotes a
backslash escapes the next character, and the closing quote ends the word at once (`""` is an
empty word); outside quotes a backslash is an ordinary character. Each word remembers
whether it was quoted, so the renderer can write it back the same way.
"""

from __future__ import annotations

import re
from typing import NamedTuple

BLANKS = frozenset(" \t\n")


class Word(NamedTuple):
    text: str
    quoted: bool


class TokenizeError(ValueError):
    """The line cannot be split (an unterminated quote)."""


_PLAIN_SPLIT = re.compile(r"[ \t\n]+")
_TOKENS = re.compile(r'"((?:[^"\\]|\\.)*)"|([^ \t\n"]+)|([ \t\n]+)|(")', re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)


def split_words(line: str) -> list[Word]:
    """The words of `line`; raises TokenizeError on an unterminated double quote."""
    if '"' not in line:
        return [Word(text, False) for text in _PLAIN_SPLIT.split(line) if text]
    words: list[Word] = []
    pending = ""  # unquoted text waiting for a blank (or joining a quoted word)
    for quoted, plain, blank, stray in _TOKENS.findall(line):
        if stray:
            raise TokenizeError("unterminated double quote")
        if plain:
            pending += plain
        elif blank:
            if pending:
                words.append(Word(pending, False))
                pending = ""
        else:  # a quoted group (possibly empty): it ends the word at once
            words.append(Word(pending + _ESCAPE.sub(r"\1", quoted), True))
            pending = ""
    if pending:
        words.append(Word(pending, False))
    return words


def needs_quotes(text: str) -> bool:
    """Whether a word must be quoted to survive `split_words` as one word."""
    return not text or any(ch in BLANKS or ch == '"' for ch in text)


def quote(text: str) -> str:
    """`text` in double quotes, with `\\` and `"` escaped (as `xtables_save_string` writes it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
