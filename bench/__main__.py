"""Run all benchmarks (or those named on the command line) and update BENCHMARKS.md."""

from __future__ import annotations

import importlib
import sys

from bench.report import update_section

# Each module exposes `run() -> str` (a Markdown section body) and `TITLE`.
MODULES = [
    "trace",
    "nft",
    "conntrack",
    "sim",
    "cluster",
    "ns3",
    "cluster_build",
    "rules",
    "nftrules",
    "lab",
    "sweep",
]


def main(argv: list[str]) -> None:
    names = argv or MODULES
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench/{name}", flush=True)
        body = module.run()
        update_section(module.TITLE, body)
        print(body)


if __name__ == "__main__":
    main(sys.argv[1:])
