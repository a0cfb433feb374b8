"""`kplab matrix`: cause x kernel profile x mitigation, each cell one emulated download.

Rows are the causes of `kplab.repro.causes`; columns are the kernel profiles (5.4: the blog's
era, 6.1: later kernels) times the mitigations (none, kube-proxy 1.15's INVALID drop rule,
`nf_conntrack_tcp_be_liberal=1`, both). A cell says what the client node's conntrack judged,
whether a packet escaped the reverse NAT, whether the client sent a RST, whether the server was
reset, and how the download ended.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kplab.net.run import run
from kplab.netfilter.conntrack import KERNEL_PROFILES, PROFILES
from kplab.repro.causes import CAUSES, Cause, arm
from kplab.repro.variants import with_be_liberal
from kplab.scenario.load import builtin
from kplab.scenario.schema import Scenario

KERNELS = tuple(PROFILES)  # the default columns; "host" (this machine's kernel) may be asked for too
MITIGATIONS = ("none", "drop-invalid", "be-liberal", "both")
LOOSE = "net.netfilter.nf_conntrack_tcp_loose"


@dataclass(frozen=True, slots=True)
class Cell:
    cause: str
    kernel: str
    mitigation: str
    invalid: int  # INVALID verdicts on the client node
    reasons: tuple[str, ...]  # their kernel reasons (and IGNOREd ones, prefixed "IGNORE: ")
    escaped: int  # packets that left the client node with the backend's own address
    client_rst: int  # RSTs the client pod sent
    server_reset: bool  # the server's connection died of a RST
    ended: str  # completed | reset | timed out | stalled
    table_full_drops: int = 0  # packets the client node's conntrack dropped (table full)

    def as_json(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "kernel": self.kernel,
            "mitigation": self.mitigation,
            "invalid": self.invalid,
            "reasons": list(self.reasons),
            "escaped": self.escaped,
            "client_rst": self.client_rst,
            "server_reset": self.server_reset,
            "ended": self.ended,
            "table_full_drops": self.table_full_drops,
        }


def stage(base: Scenario, cause: Cause, kernel: str, mitigation: str) -> Scenario:
    s = replace(base, kernel=kernel, sysctls={**base.sysctls, LOOSE: cause.loose})
    liberal = 1 if mitigation in ("be-liberal", "both") else 0
    s = with_be_liberal(s, liberal)
    drop = mitigation in ("drop-invalid", "both")
    if s.kube_proxy_mode == "nftables":  # no kube-proxy version drops INVALID: the operator does
        return replace(s, operator_drop_invalid=drop)
    return replace(s, kube_proxy_version="1.15" if drop else "1.14")


def cell(base: Scenario, cause: Cause, kernel: str, mitigation: str) -> Cell:
    scenario = stage(base, cause, kernel, mitigation)
    cluster, summary = run(scenario, setup=lambda c: arm(c, cause))
    node = cluster.nodes["node-a"]
    reasons = [*node.stats.invalid_by_reason, *(f"IGNORE: {r}" for r in node.stats.ignored_by_reason)]
    download = summary["connections"][0]
    return Cell(
        cause.id,
        kernel,
        mitigation,
        sum(node.stats.invalid_by_reason.values()),
        tuple(sorted(reasons)),
        node.stats.unnated_escapes,
        cluster.pods["client-1"].tcp.counters.get("TcpOutRsts", 0),
        cluster.servers["server-1"].stats.errors.get("ECONNRESET", 0) > 0,
        "stalled" if download["outcome"] == "running" else download["outcome"],
        node.ct.stats.drop,
    )


def matrix(base: Scenario | None = None, causes: tuple[Cause, ...] = CAUSES,
           kernels: tuple[str, ...] = KERNELS) -> list[Cell]:  # fmt: skip
    base = base or builtin("matrix")
    return [cell(base, c, k, m) for c in causes for k in kernels for m in MITIGATIONS]


def grid(cells: list[Cell]) -> tuple[list[tuple[str, str]], list[tuple[str, list[Cell]]]]:
    """How every view lays cells out: the (kernel, mitigation) columns present, in profile then
    mitigation order, and one row per cause (in the cells' order) with its cell in each column."""
    present = {(c.kernel, c.mitigation) for c in cells}
    columns = [(k, m) for k in KERNEL_PROFILES for m in MITIGATIONS if (k, m) in present]
    by_key = {(c.cause, c.kernel, c.mitigation): c for c in cells}
    rows = [
        (cause, [by_key[(cause, k, m)] for k, m in columns])
        for cause in dict.fromkeys(c.cause for c in cells)
    ]
    return columns, rows


def short(c: Cell) -> str:
    """A cell in a few words: how the download ended, and what was counted."""
    flags = []
    if c.invalid:
        flags.append(f"INV {c.invalid}")
    if c.escaped:
        flags.append(f"esc {c.escaped}")
    if c.client_rst:
        flags.append(f"RST {c.client_rst}")
    if c.server_reset:
        flags.append("SRV RESET")
    if c.table_full_drops:
        flags.append(f"ct drop {c.table_full_drops}")
    return f"{c.ended}" + (f" ({', '.join(flags)})" if flags else "")


def to_markdown(cells: list[Cell]) -> str:
    """The cells as a Markdown table (`kplab matrix -o markdown`, `kplab lab matrix`)."""
    columns, rows = grid(cells)
    head = "| cause | " + " | ".join(f"{k} {m}" for k, m in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 1)]
    titles = {cause.id: cause.title for cause in CAUSES}
    for cause_id, row in rows:
        lines.append(f"| {titles.get(cause_id, cause_id)} | " + " | ".join(short(c) for c in row) + " |")
    return "\n".join(lines) + "\n"
