"""Tokens of nft's text syntax, with their line numbers, and a cursor over them.

Words split on white space and on `{ } ; ,`; `"..."` is one string token; `#` starts a comment.
Dots, colons and slashes stay inside words (`10.0.0.1:80`, `chain-a/b`); a concatenation's ` . `
and a map's ` : ` are words of their own because nft writes them between spaces.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from kplab.errors import InputError, located

WORD, STRING, PUNCT, NEWLINE = "w", "s", "p", "n"
_PUNCT = "{};,"


class Tok(NamedTuple):
    text: str
    line: int
    kind: str

    def render(self) -> str:
        return '"' + self.text.replace('"', '\\"') + '"' if self.kind == STRING else self.text


_TOKEN = re.compile(
    r'(?P<n>\n)|(?P<sp>[ \t\r]+|\\\n)|(?P<c>#[^\n]*)|(?P<s>"(?:[^"\\\n]|\\.)*")|(?P<p>[{};,])'
    r'|(?P<w>[^ \t\r\n"#{};,]+)|(?P<bad>")'
)


def tokenize(text: str, file: str) -> list[Tok]:
    toks: list[Tok] = []
    line = 1
    append = toks.append
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "w":
            append(Tok(m.group(), line, WORD))
        elif kind == "n":
            append(Tok("\n", line, NEWLINE))
            line += 1
        elif kind == "p":
            append(Tok(m.group(), line, PUNCT))
        elif kind == "s":
            raw = m.group()[1:-1]
            append(Tok(re.sub(r"\\(.)", r"\1", raw) if "\\" in raw else raw, line, STRING))
        elif kind == "sp":
            if m.group().startswith("\\"):
                line += 1
        elif kind == "bad":
            raise located(file, line, "unterminated string")
    return toks


class Cursor:
    """Reads a token list; every error names the file and the current token's line."""

    def __init__(self, toks: list[Tok], file: str, end_line: int = 0) -> None:
        self.toks, self.file, self.pos = toks, file, 0
        self.end_line = end_line or (toks[-1].line if toks else 1)

    def peek(self, ahead: int = 0) -> Tok | None:
        at = self.pos + ahead
        return self.toks[at] if at < len(self.toks) else None

    def peek_text(self, ahead: int = 0) -> str | None:
        tok = self.peek(ahead)
        return tok.text if tok is not None and tok.kind != STRING else None

    @property
    def line(self) -> int:
        tok = self.peek()
        return tok.line if tok is not None else self.end_line

    def at_end(self) -> bool:
        return self.pos >= len(self.toks)

    def error(self, message: str) -> InputError:
        return located(self.file, self.line, message)

    def next(self, what: str = "a word") -> Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(f"expected {what}, got the end of the line")
        self.pos += 1
        return tok

    def word(self, what: str = "a word") -> str:
        tok = self.next(what)
        if tok.kind != WORD:
            raise located(self.file, tok.line, f"expected {what}, got {tok.render()!r}")
        return tok.text

    def string(self, what: str = "a string") -> str:
        tok = self.next(what)
        if tok.kind not in (STRING, WORD):
            raise located(self.file, tok.line, f"expected {what}, got {tok.text!r}")
        return tok.text

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind != STRING and tok.text == text:
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            got = self.peek()
            raise self.error(f"expected '{text}', got {got.render()!r}" if got else f"expected '{text}'")

    def skip_newlines(self) -> None:
        while (tok := self.peek()) is not None and tok.kind == NEWLINE:
            self.pos += 1

    def group(self) -> list[Tok]:
        """The tokens of a `{ ... }` group (the cursor is on `{`), newlines left out."""
        self.expect("{")
        depth = 1
        out: list[Tok] = []
        while True:
            tok = self.next("'}'")
            if tok.kind == PUNCT and tok.text == "{":
                depth += 1
            elif tok.kind == PUNCT and tok.text == "}":
                depth -= 1
                if depth == 0:
                    return out
            if tok.kind != NEWLINE:
                out.append(tok)

    def statement(self) -> list[Tok]:
        """Tokens up to the end of the line or `;` (or a closing `}` of the enclosing block), with
        any `{ ... }` groups inside kept whole."""
        out: list[Tok] = []
        depth = 0
        while (tok := self.peek()) is not None:
            if depth == 0 and (tok.kind == NEWLINE or (tok.text == ";" and tok.kind == PUNCT)):
                self.pos += 1
                break
            if depth == 0 and tok.kind == PUNCT and tok.text == "}":
                break
            self.pos += 1
            if tok.kind == PUNCT and tok.text == "{":
                depth += 1
            elif tok.kind == PUNCT and tok.text == "}":
                depth -= 1
            if tok.kind != NEWLINE:
                out.append(tok)
        return out
