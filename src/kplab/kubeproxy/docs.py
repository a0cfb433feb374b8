"""Reading YAML/JSON documents with their position, and typed access to their fields.

Every problem becomes an `InputError` of the form `file:doc N: path: what is wrong`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kplab.errors import InputError
from kplab.untrusted import YAML_ERRORS, LimitedLoader, load_json, shown, yaml_problem


@dataclass(frozen=True, slots=True)
class Doc:
    """One document: its content and where it is (`item` is the index inside a `kind: List`)."""

    data: Any
    file: str
    doc: int
    line: int
    item: int | None = None

    def where(self) -> str:
        item = f" items[{self.item}]" if self.item is not None else ""
        return f"{self.file}:doc {self.doc}{item}"

    def error(self, path: str, message: str) -> InputError:
        return InputError(f"{self.where()}: {path}: {message}")


def read_documents(text: str, file: str) -> Iterator[Doc]:
    """The documents of a YAML (multi-document) or JSON text, `kind: List` expanded."""
    for doc in _raw_documents(text, file):
        if isinstance(doc.data, dict) and doc.data.get("kind") == "List":
            items = doc.data.get("items") or []
            if not isinstance(items, list):
                raise doc.error("items", f"expected a list, got {_kind(items)}")
            for i, item in enumerate(items):
                yield Doc(item, file, doc.doc, doc.line, i)
        elif doc.data is not None:
            yield doc


def _raw_documents(text: str, file: str) -> Iterator[Doc]:
    if text.lstrip().startswith(("{", "[")):
        yield Doc(load_json(text, file), file, 1, 1)
        return
    loader = LimitedLoader(text)  # libyaml's when PyYAML has it
    number = 1
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None
            data = loader.construct_document(node)
            yield Doc(data, file, number, node.start_mark.line + 1)
            number += 1
    except YAML_ERRORS as exc:
        line, problem = yaml_problem(exc)
        raise InputError(f"{file}:{line}: doc {number}: malformed YAML: {problem}") from None
    finally:
        loader.dispose()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "?"
    )


class Fields:
    """Typed access to a mapping inside a document; `path` names it in error messages."""

    def __init__(self, doc: Doc, data: object, path: str = "") -> None:
        if not isinstance(data, dict):
            raise doc.error(path or "(document)", f"expected a mapping, got {_kind(data)}")
        self.doc = doc
        self.data: dict[str, Any] = data
        self.path = path

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def sub(self, key: str) -> Fields:
        """The mapping under `key` ({} when absent or null)."""
        value = self.data.get(key)
        return Fields(self.doc, {} if value is None else value, self._p(key))

    def string(self, key: str, default: str = "", *, required: bool = False) -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.doc.error(self._p(key), "is required")
            return default
        if not isinstance(value, str):
            raise self.doc.error(self._p(key), f"expected a string, got {_kind(value)}")
        return value

    def integer(self, key: str, default: int = 0, *, lo: int = 0, hi: int = 65535) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.doc.error(self._p(key), f"expected an integer, got {_kind(value)} {shown(value)}")
        if not lo <= value <= hi:
            raise self.doc.error(self._p(key), f"{value} is out of range {lo}..{hi}")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.doc.error(self._p(key), f"expected true or false, got {_kind(value)} {shown(value)}")
        return value

    def items(self, key: str) -> list[tuple[str, Any]]:
        """The list under `key` as (path, element) pairs ([] when absent or null)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.doc.error(self._p(key), f"expected a list, got {_kind(value)}")
        return [(f"{self._p(key)}[{i}]", v) for i, v in enumerate(value)]

    def strings(self, key: str) -> tuple[str, ...]:
        out = []
        for path, value in self.items(key):
            if not isinstance(value, str):
                raise self.doc.error(path, f"expected a string, got {_kind(value)}")
            out.append(value)
        return tuple(out)

    def mapping(self, path: str, value: object) -> Fields:
        return Fields(self.doc, value, path)

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(key, default) or default
        if value not in allowed:
            raise self.doc.error(self._p(key), f"{shown(value)} is not one of {', '.join(allowed)}")
        return value
