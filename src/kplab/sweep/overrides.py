"""Set one scenario field, named by a dotted path, in a scenario's YAML data (before validation).

`links.fabric.faults.slow_share` walks mappings key by key; a list takes an index or an item's
`name` (`nodes.node-a.kernel`, `nodes.0.kernel`); a key that itself holds dots (a sysctl) is
matched whole (`sysctls.net.netfilter.nf_conntrack_tcp_loose`). Missing mappings on the way are
created, so a path the schema does not have reaches the scenario loader, which rejects it as an
unknown key like any other.
"""

from __future__ import annotations

from typing import Any

# Mappings whose keys contain dots: the rest of the path is one key.
DOTTED_KEYS = frozenset({"sysctls"})


def plain(data: Any) -> Any:
    """The YAML data as plain dicts and lists (no line bookkeeping), deep-copied."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit():
        if int(part) >= len(items):
            raise ValueError(f"{where} has {len(items)} items, no item {part}")
        return int(part)
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    raise ValueError(f"{where} has no item named {part!r}")


def _mapping_key(node: dict[str, Any], parts: list[str], i: int, parent: str) -> int:
    """How many parts (from i) name the next key: the longest existing key, else one part."""
    if parent in DOTTED_KEYS:
        return len(parts) - i
    for j in range(len(parts), i, -1):
        if ".".join(parts[i:j]) in node:
            return j - i
    return 1


def apply(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` to `value` in `data` (plain dicts/lists), in place. ValueError: a path that
    cannot be followed (through a scalar, a missing list item)."""
    parts = path.split(".")
    if not all(parts):
        raise ValueError(f"{path!r} is not a dotted field path")
    node: Any = data
    parent = ""
    i = 0
    while True:
        where = ".".join(parts[:i]) or "scenario"
        if isinstance(node, list):
            index = _list_index(node, parts[i], where)
            if i == len(parts) - 1:
                node[index] = value
                return
            node, parent, i = node[index], parts[i], i + 1
            continue
        if not isinstance(node, dict):
            raise ValueError(f"{where} is a value, not a mapping: cannot set {path}")
        n = _mapping_key(node, parts, i, parent)
        key = ".".join(parts[i : i + n])
        if i + n == len(parts):
            node[key] = value
            return
        if node.get(key) is None:
            node[key] = {}
        node, parent, i = node[key], key, i + n
