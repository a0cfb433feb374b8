"""Finished runs kept on disk under their run key: a sweep again runs only what is new.

`DIR/runs/<key>.json`, each written whole (a temporary file renamed into place), so a sweep
stopped at any moment (Ctrl-C, a crash, a lost machine) leaves only complete results behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kplab import __version__


class Cache:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory / "runs" if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.directory is None:
            return None
        try:
            record = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None  # not there (or not whole: never written by us): run it again
        result = record.get("result") if isinstance(record, dict) else None
        return result if isinstance(result, dict) else None

    def put(self, key: str, result: dict[str, Any], about: dict[str, Any]) -> None:
        if self.directory is None:
            return
        record = {"key": key, "kplab": __version__, **about, "result": result}
        tmp = self.directory / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record, sort_keys=True))
        os.replace(tmp, self._path(key))

    def record(self, key: str) -> dict[str, Any]:
        """The whole stored record (tests and tools: which worker ran it)."""
        data: dict[str, Any] = json.loads(self._path(key).read_text())
        return data
