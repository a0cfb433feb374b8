"""`kplab compare matrix`: the emulator's host-profile column next to the lab's, field by field.

Compared, per (cause, mitigation), are the fields both sides measure the same way:
- `ended` (completed / reset / stalled / timed out ...);
- `server_reset` (the server's connection died of a RST);
- `escaped` > 0, `client_rst` > 0, `invalid` > 0 on the client node, `table_full_drops` > 0.
Counts are compared as "any or none": the lab's counts depend on real timing (how many
retransmissions escape before the stall is declared), the emulator's on simulated timing;
whether it happens at all does not. INVALID reasons are not compared (a child namespace cannot
log them).
"""

from __future__ import annotations

from typing import Any

from kplab.repro.matrix import Cell

FIELDS = ("ended", "server_reset", "escaped", "client_rst", "invalid", "table_full_drops")
COUNTED = {"escaped", "client_rst", "invalid", "table_full_drops"}


def comparable(cell: Cell, name: str) -> object:
    value = getattr(cell, name)
    return value > 0 if name in COUNTED else value


def disagreements(lab: list[Cell], emulator: list[Cell]) -> list[dict[str, Any]]:
    emu = {(c.cause, c.mitigation): c for c in emulator}
    out: list[dict[str, Any]] = []
    for cell in lab:
        other = emu.get((cell.cause, cell.mitigation))
        if other is None:
            out.append({"cause": cell.cause, "mitigation": cell.mitigation, "field": "cell",
                        "lab": "measured", "emulator": "missing"})  # fmt: skip
            continue
        for name in FIELDS:
            mine, theirs = comparable(cell, name), comparable(other, name)
            if mine != theirs:
                out.append({"cause": cell.cause, "mitigation": cell.mitigation, "field": name,
                            "lab": mine, "emulator": theirs})  # fmt: skip
    return out


def report(lab: list[Cell], emulator: list[Cell], notes: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "cells": len(lab),
        "fields": list(FIELDS),
        "disagreements": disagreements(lab, emulator),
        "lab": [c.as_json() for c in lab],
        "emulator": [c.as_json() for c in emulator],
        "notes": notes,
    }
