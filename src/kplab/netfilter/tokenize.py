"""Split one iptables-restore line into words, the way iptables-restore does.

Mirrors `add_param_to_argv` (iptables, xshared.c): words are separated by blanks (space, tab,
newline only); a double quote opens quoting (what came before it joins the word), inside quotes a
backslash escapes the next character, and the closing quote ends the word at once (`""` is an
empty word); outside quotes a backslash is an ordinary character. Each word remembers
whether it was quoted, so the renderer can write it back the same way.
"""

from __future__ import annotations

from typing import NamedTuple

BLANKS = frozenset(" \t\n")


class Word(NamedTuple):
    text: str
    quoted: bool


class TokenizeError(ValueError):
    """The line cannot be split (an unterminated quote)."""


def split_words(line: str) -> list[Word]:
    """The words of `line`; raises TokenizeError on an unterminated double quote."""
    words: list[Word] = []
    buf: list[str] = []
    in_quote = False
    escaped = False
    for ch in line:
        if in_quote:
            if escaped:
                buf.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                words.append(Word("".join(buf), True))
                buf.clear()
                in_quote = False
            else:
                buf.append(ch)
        elif ch == '"':
            in_quote = True  # what came before the quote joins the quoted word
        elif ch in BLANKS:
            if buf:
                words.append(Word("".join(buf), False))
                buf.clear()
        else:
            buf.append(ch)
    if in_quote:
        raise TokenizeError("unterminated double quote")
    if buf:
        words.append(Word("".join(buf), False))
    return words


def needs_quotes(text: str) -> bool:
    """Whether a word must be quoted to survive `split_words` as one word."""
    return not text or any(ch in BLANKS or ch == '"' for ch in text)


def quote(text: str) -> str:
    """`text` in double quotes, with `\\` and `"` escaped (as `xtables_save_string` writes it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
