"""Reading what users give us: files, YAML and JSON, with limits, and values quoted safely.

Every loader reads through here, so the same hostile inputs get the same one-line answer
(`kplab.errors.InputError`): a directory or an unreadable file, bytes that are not UTF-8 text, a
NUL byte, YAML whose aliases expand beyond a small budget (billion laughs) or that nests deeper
than any real manifest, JSON that does the same or holds NaN/Infinity, and numbers too long for
Python to parse. `shown()` quotes a value in a message without ever expanding all of it.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any, Final

import yaml

from kplab.errors import InputError

MAX_DEPTH: Final = 64  # nesting of YAML/JSON documents (real manifests stay below 20)
MAX_ALIAS_NODES: Final = 10_000  # YAML nodes that alias uses may add, all documents together
SHOWN_CHARS: Final = 60  # the longest value quoted in a message


def decode(data: bytes, name: str) -> str:
    """UTF-8 text without NUL bytes, or `name:line: ...`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}): a binary file?"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise InputError(f"{name}:{line}: a NUL byte: not a text file")
    return text


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a file (`-`: standard input); a directory or an unreadable file is one line."""
    name = str(path)
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None


def read_text(path: str | Path) -> str:
    """The UTF-8 text of a file (`-`: standard input), checked by `decode`."""
    return decode(read_bytes(path), "<stdin>" if str(path) == "-" else str(path))


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`repr(value)` cut to about `limit` characters, without walking more of the value than that
    (an aliased YAML structure can be exponentially larger than its text)."""
    out: list[str] = []
    _show(value, out, limit, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: object, out: list[str], limit: int, used: int) -> int:
    if used > limit:
        return used
    if isinstance(value, dict | list | tuple):
        items = list(itertools.islice(value.items() if isinstance(value, dict) else value, limit + 1))
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        out.append(opening)
        used += 1
        for i, item in enumerate(items):
            if used > limit:
                break
            if i:
                out.append(", ")
                used += 2
            if isinstance(value, dict):
                key, val = item
                used = _show(key, out, limit, used)
                out.append(": ")
                used = _show(val, out, limit, used + 2)
            else:
                used = _show(item, out, limit, used)
        out.append(closing)
        return used + 1
    text = repr(value[: limit + 1]) if isinstance(value, str | bytes) else _scalar(value, limit)
    out.append(text)
    return used + len(text)


def _scalar(value: object, limit: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"<an integer of {value.bit_length()} bits>"
    return repr(value) if isinstance(value, int | float | bool | type(None)) else f"<{type(value).__name__}>"


# libyaml's parser when PyYAML has it: the same documents and marks (line numbers), several times
# faster. Its composer is C code, so the limits are checked on the composed node graph (aliases are
# shared node objects there), before anything is constructed from it.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LimitedLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader with an alias budget and a nesting limit: a document whose aliases
    stand for more than MAX_ALIAS_NODES nodes beyond those written (billion laughs), that refers
    to an enclosing node (a cycle) or nests deeper than MAX_DEPTH is refused."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # Without an anchor there is no alias to expand: the walk is skipped (it doubles the load
        # time of 10,000 Services). libyaml refuses nesting beyond 1,000 levels on its own, and
        # deeper-than-Python construction is a RecursionError, which callers report in one line.
        self.kplab_anchors = not isinstance(stream, str) or "&" in stream

    def get_node(self) -> Any:
        node = super().get_node()
        if node is not None and self.kplab_anchors:
            check_node(node)
        return node

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None and self.kplab_anchors:
            check_node(node)
        return node


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_node(root: Any) -> None:
    """Raise a YAML error if `root`, aliases expanded, is cyclic, too deep or too large (iterative:
    safe on any graph)."""
    done: dict[int, tuple[int, int]] = {}  # id -> (nodes when expanded, depth)
    open_ids: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            parts = [done[id(child)] for child in _children(node)]
            size = 1 + sum(p[0] for p in parts)
            depth = 1 + max((p[1] for p in parts), default=0)
            open_ids.discard(key)
            done[key] = (size, depth)
            if depth > MAX_DEPTH:
                raise _error(f"nested deeper than {MAX_DEPTH} levels", node)
            if size - len(done) > MAX_ALIAS_NODES:
                raise _error(f"aliases expand to more than {MAX_ALIAS_NODES} nodes (a bomb?)", node)
            continue
        if key in done:
            continue
        if key in open_ids:
            raise _error("an alias refers to a node that contains it (a cycle)", node)
        open_ids.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in done)


def _error(problem: str, node: Any) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, problem, node.start_mark)


def yaml_problem(exc: Exception) -> tuple[int, str]:
    """(1-based line, what is wrong) of an error raised while loading YAML."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "invalid YAML"
        return (mark.line + 1 if mark is not None else 1), " ".join(str(problem).split())
    if isinstance(exc, RecursionError):
        return 1, f"nested deeper than {MAX_DEPTH} levels"
    text = " ".join(str(exc).split())
    if "digits" in text:  # Python's int(): a number longer than it parses
        return 1, "a number with more than 4300 digits"
    return 1, text[:200] or type(exc).__name__


# What loading YAML may raise on hostile input besides YAMLError: ValueError (an integer longer
# than Python parses, a bad timestamp), RecursionError (a guard), OverflowError (huge floats).
YAML_ERRORS: Final = (yaml.YAMLError, ValueError, RecursionError, OverflowError, TypeError)


def load_json(text: str, name: str, line: int = 1) -> Any:
    """One JSON value: no NaN/Infinity, no nesting beyond MAX_DEPTH, or `name:line: ...`."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{line + exc.lineno - 1}: not JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError(
            f"{name}:{line}: not JSON kplab reads: nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise InputError(f"{name}:{line}: not JSON kplab reads: {yaml_problem(exc)[1]}") from None
    if nesting(value) > MAX_DEPTH:
        raise InputError(f"{name}:{line}: not JSON kplab reads: nested deeper than {MAX_DEPTH} levels")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def nesting(value: object) -> int:
    """How deep lists and mappings nest in `value` (iteratively: safe on any depth)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def finite(value: float, what: str) -> float:
    """`value` unless it is NaN or infinite (then ValueError naming `what`)."""
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


def path_inside(directory: Path, name: str) -> Path:
    """`directory/name` for a file name that came from input (a node's name): refused unless it
    names a file directly inside `directory` (no '/', no '..', no symlink that leads out)."""
    if not name or name.startswith(".") or "/" in name or "\0" in name:
        raise InputError(f"{shown(name)}: not a file name kplab writes into {directory}")
    path = directory / name
    if path.resolve().parent != directory.resolve():
        raise InputError(f"{path}: leads outside {directory}: refused")
    return path
