"""kube-proxy's tables in a real-kernel lab namespace: load them with the real `nft -f` and list
them back with `nft -j list ruleset` (never in the host namespace: `ns` is a lab namespace)."""

from __future__ import annotations

import json
from typing import Any

from kplab.lab.netns import Netns


def load(ns: Netns, text: str, timeout: float = 60) -> None:
    """Run `text` as one `nft -f` batch inside `ns` (kube-proxy's own way of writing rules)."""
    ns.run(["nft", "-f", "-"], input=text, timeout=timeout)


def list_json(ns: Netns) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ns.run(["nft", "-j", "list", "ruleset"]).stdout)
    return doc


def clear(ns: Netns) -> None:
    """Remove every table of the lab namespace `ns`."""
    ns.run(["nft", "flush", "ruleset"])
