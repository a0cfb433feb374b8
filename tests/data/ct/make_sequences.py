"""Writes the hand-made differential sequences of this directory (run it after editing).

Handshake: both sides offer wscale 7 and SACK; the client's window is 502<<7 = 64256 bytes, the
server's 509<<7 = 65152. Veth MTU in the lab is 65535, so segments of up to 60000 bytes fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OPTS = {"mss": 1460, "wscale": 7, "sackok": True}


def o(flags: str, seq: int, ack: int = 0, win: int = 502, length: int = 0, **extra: Any) -> dict[str, Any]:
    return {"dir": "orig", "flags": flags, "seq": seq, "ack": ack, "win": win, "len": length, **extra}


def r(flags: str, seq: int, ack: int = 0, win: int = 509, length: int = 0, **extra: Any) -> dict[str, Any]:
    return {"dir": "reply", "flags": flags, "seq": seq, "ack": ack, "win": win, "len": length, **extra}


HANDSHAKE = [
    o("S", 0, 0, 64240, opts=OPTS),
    r("SA", 0, 1, 65160, opts=OPTS),
    o("A", 1, 1),
    o("PA", 1, 1, length=100),
    r("A", 1, 101),
]
# after this: client td_end=101, server td_end=1; server may send up to 1+... (client win 64256)
BULK = [  # the server sends 100000 bytes in two halves, each acked
    r("PA", 1, 101, length=50000),
    o("A", 101, 50001),
    r("PA", 50001, 101, length=50000),
    o("A", 101, 100001),
]
delete = {"action": "ct-delete"}

SEQUENCES: dict[str, list[dict[str, Any]]] = {
    "fin_teardown": [
        *HANDSHAKE,
        r("PA", 1, 101, length=300),
        o("A", 101, 301),
        o("FA", 101, 301),
        r("A", 301, 102),
        r("FA", 301, 102),
        o("A", 102, 302),
    ],
    "seq_over_large": [*HANDSHAKE, r("PA", 1 + 64256 + 70000, 101, length=100), r("PA", 1, 101, length=10)],
    "seq_over_small_overshoot": [
        *HANDSHAKE,
        r("PA", 64300, 101, length=100),
        o("A", 101, 64400),
        r("PA", 64400, 101, length=10),
    ],
    "seq_straddles_right_edge": [*HANDSHAKE, r("PA", 64000, 101, length=1000), o("A", 101, 65001)],
    "seq_under_old_duplicate": [
        *HANDSHAKE,
        *BULK,
        r("PA", 1, 101, length=1000),
        r("PA", 100001, 101, length=5),
    ],
    "ack_over_unseen_data": [*HANDSHAKE, r("PA", 1, 100101, length=100), r("PA", 1, 101, length=100)],
    "ack_under_overly_delayed": [*HANDSHAKE, *BULK, o("A", 101, 1), o("A", 101, 100001)],
    "delayed_ack_in_window": [*HANDSHAKE, *BULK, o("A", 101, 50001), o("PA", 101, 100001, length=10)],
    "rst_exact": [*HANDSHAKE, r("PA", 1, 101, length=100), o("R", 101)],
    "rst_inexact_in_window": [*HANDSHAKE, r("PA", 1, 101, length=100), o("R", 111), o("A", 101, 101)],
    "rst_out_of_window": [*HANDSHAKE, r("PA", 1, 101, length=100), o("R", 101 + 1_000_000)],
    "rst_below_maxack": [*HANDSHAKE, r("PA", 1, 101, length=100), o("R", 50)],
    "rst_ack_from_server": [*HANDSHAKE, r("RA", 1, 101)],
    "syn_then_rst": [o("S", 0, 0, 64240, opts=OPTS), r("RA", 0, 1, 0)],
    "time_wait_reopen": [
        *HANDSHAKE,
        o("FA", 101, 1),
        r("FA", 1, 102),
        o("A", 102, 2),
        o("S", 5000, 0, 64240, opts=OPTS),
        r("SA", 0, 5001, 65160, opts=OPTS),
    ],
    "pickup_after_delete": [
        *HANDSHAKE,
        delete,
        r("PA", 1, 101, length=100),
        o("R", 101),
        r("PA", 101, 101, length=100),
    ],
    "pickup_client_first": [*HANDSHAKE, delete, o("PA", 101, 1, length=10), r("A", 1, 111)],
    "retransmissions": [*HANDSHAKE, o("A", 101, 1), o("A", 101, 1), o("A", 101, 1), o("A", 101, 1)],
    "syn_retransmit": [
        o("S", 0, 0, 64240, opts=OPTS),
        o("S", 0, 0, 64240, opts=OPTS),
        r("SA", 0, 1, 65160, opts=OPTS),
        r("SA", 0, 1, 65160, opts=OPTS),
        o("A", 1, 1),
    ],
    "no_wscale": [
        o("S", 0, 0, 29200, opts={"mss": 1460}),
        r("SA", 0, 1, 28960, opts={"mss": 1460}),
        o("A", 1, 1, 229),
        r("PA", 1, 1, 227, length=1000),
        r("PA", 1001, 1, 227, length=1000),
    ],
    "sack_blocks": [
        *HANDSHAKE,
        r("PA", 1001, 101, length=100),
        o("A", 101, 1, sack=[[1001, 1101]]),
        o("A", 101, 1, sack=[[1001, 90000]]),
    ],
    "invalid_flags": [*HANDSHAKE, o("F", 101), o("SF", 101), o("", 101)],
    "synack_first": [r("SA", 0, 1, 65160, opts=OPTS)],
    "challenge_ack_in_last_ack": [
        *HANDSHAKE,
        o("FA", 101, 1),
        r("FA", 1, 102),
        o("S", 9000, 0, 64240, opts=OPTS),
        r("A", 2, 102),
        o("A", 102, 2),
    ],
    "syn_on_established_then_rst": [*HANDSHAKE, o("S", 7000, 0, 64240, opts=OPTS), r("RA", 0, 7001, 0)],
    "syn_on_established_then_synack": [
        *HANDSHAKE,
        o("S", 7000, 0, 64240, opts=OPTS),
        r("SA", 20000, 7001, 65160, opts=OPTS),
        o("A", 7001, 20001),
    ],
    "simultaneous_open": [
        o("S", 0, 0, 64240, opts=OPTS),
        r("S", 0, 0, 65160, opts=OPTS),
        o("SA", 0, 1, 64240, opts=OPTS),
        r("SA", 0, 1, 65160, opts=OPTS),
        r("A", 1, 1),
        o("A", 1, 1),
    ],
    "rst_then_syn_reopen": [
        *HANDSHAKE,
        o("R", 101),
        o("S", 9000, 0, 64240, opts=OPTS),
        r("SA", 0, 9001, 65160, opts=OPTS),
    ],
    "invalid_fins_lower_timeout": [*HANDSHAKE, r("FA", 900000, 101), o("FA", 900000, 1), o("A", 101, 1)],
    "challenge_ack_in_syn_sent": [o("S", 0, 0, 64240, opts=OPTS), r("A", 777, 55), o("R", 55)],
    "synack_retransmit": [
        o("S", 0, 0, 64240, opts=OPTS),
        r("SA", 0, 1, 65160, opts=OPTS),
        r("SA", 0, 1, 65160, opts=OPTS),
        o("A", 1, 1),
        r("SA", 0, 1, 65160, opts=OPTS),
    ],
    "syn_new_isn_in_syn_sent": [
        o("S", 0, 0, 64240, opts=OPTS),
        o("S", 100, 0, 64240, opts=OPTS),
        r("SA", 0, 101, 65160, opts=OPTS),
        o("A", 101, 1),
    ],
    "ack_before_synack": [o("S", 0, 0, 64240, opts=OPTS), o("A", 1, 1), r("SA", 0, 1, 65160, opts=OPTS)],
    "keepalive": [
        *HANDSHAKE,
        o("A", 100, 1, length=1),
        r("A", 1, 101),
        r("A", 0, 101, length=1),
        o("A", 101, 1),
    ],
    "fin_out_of_window_then_reset": [
        *HANDSHAKE,
        o("FA", 101 + 5_000_000, 1),
        r("R", 1),
        o("S", 9000, 0, 64240),
    ],
    "rst_out_of_window_while_closing": [*HANDSHAKE, o("FA", 101, 1), r("A", 1, 102), o("R", 102 + 5_000_000)],
    "regress-pickup-then-client-port-remap": [
        *HANDSHAKE,
        delete,
        r("A", 1, 101),
        o("A", 101, 1),
        r("A", 1, 101),
    ],
    # a RST from the same side as an ignored SYN, acking that SYN (absolute ack = client ISN + 7001)
    "rst_same_dir_after_ignored_syn": [
        *HANDSHAKE,
        o("S", 7000, 0, 64240, opts=OPTS),
        o("RA", 101, (1_000_000 + 7001 - 3_000_000_000) % 2**32),
    ],
    "data_zero_window": [*HANDSHAKE, o("A", 101, 1, win=0), r("PA", 1, 101, length=1)],
}
OPTIONS: dict[str, dict[str, Any]] = {
    "seq_over_large_liberal": {"base": "seq_over_large", "sysctl": {"nf_conntrack_tcp_be_liberal": 1}},
    "seq_over_large_drop": {"base": "seq_over_large", "drop_invalid": True},
    "pickup_after_delete_strict": {"base": "pickup_after_delete", "sysctl": {"nf_conntrack_tcp_loose": 0}},
    "pickup_after_delete_strict_drop": {
        "base": "pickup_after_delete",
        "sysctl": {"nf_conntrack_tcp_loose": 0},
        "drop_invalid": True,
    },
    "rst_below_maxack_ignore_rst": {
        "base": "rst_below_maxack",
        "sysctl": {"nf_conntrack_tcp_ignore_invalid_rst": 1},
    },
    "seq_under_old_duplicate_liberal": {
        "base": "seq_under_old_duplicate",
        "sysctl": {"nf_conntrack_tcp_be_liberal": 1},
    },
}


def main() -> None:
    here = Path(__file__).parent
    for name, steps in SEQUENCES.items():
        (here / f"{name}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    (here / "options.json").write_text(json.dumps(OPTIONS, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
