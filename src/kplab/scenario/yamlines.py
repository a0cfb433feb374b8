"""YAML with line numbers: mappings come back as `LineDict`, which remembers the line of each key.

Scenario errors must name the file and line (`seed.yaml:12: links.fabric.rate: ...`); PyYAML's
composer knows the marks, so a small constructor keeps them.
"""

from __future__ import annotations

from typing import Any

import yaml

from kplab.errors import InputError
from kplab.untrusted import YAML_ERRORS, LimitedLoader, yaml_problem


class LineDict(dict[str, Any]):
    """A mapping that knows the 1-based line of itself (`line`) and of each key (`key_lines`)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(LimitedLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(text: str, file: str) -> Any:
    """Parse one YAML document; a syntax error becomes `file:line: ...`."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass, with limits
    except YAML_ERRORS as exc:
        line, problem = yaml_problem(exc)
        raise InputError(f"{file}:{line}: invalid YAML: {problem}") from None
