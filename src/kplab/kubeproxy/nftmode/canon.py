"""A ruleset listing (`nft -j list ruleset`) in a form two listings can be compared in: metainfo
and handles dropped, objects keyed by family/table/name, set elements and anonymous sets sorted;
each chain's rules stay in order. Table and chain comments are dropped: nft 1.0.6 leaves them out
of JSON, other versions may not."""

from __future__ import annotations

import json
from typing import Any

Key = tuple[str, str, str, str]


def _sorted_sets(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _sorted_sets(v) for k, v in value.items()}
        if "set" in out and isinstance(out["set"], list):
            out["set"] = sorted(out["set"], key=lambda v: json.dumps(v, sort_keys=True))
        return out
    if isinstance(value, list):
        return [_sorted_sets(v) for v in value]
    return value


def canonical(doc: dict[str, Any]) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for item in doc.get("nftables", []):
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        body = {k: _sorted_sets(v) for k, v in body.items() if k != "handle"}
        if kind in ("table", "chain"):
            body.pop("comment", None)
        if "elem" in body:
            body["elem"] = sorted(body["elem"], key=lambda v: json.dumps(v, sort_keys=True))
        if kind == "rule":
            key = ("rules", body["family"], body["table"], body["chain"])
            out.setdefault(key, []).append(body)
        else:
            table = body["name"] if kind == "table" else body["table"]
            out[(kind, body["family"], table, body["name"])] = body
    return out


def differences(mine: dict[Key, Any], real: dict[Key, Any]) -> list[str]:
    """One line per object that differs (empty when equal)."""
    out = []
    for key in sorted(mine.keys() | real.keys()):
        if mine.get(key) != real.get(key):
            out.append(f"{key}: kplab {json.dumps(mine.get(key))} != nft {json.dumps(real.get(key))}")
    return out
