"""Every cell of the matrix, against the documented behaviour of Linux conntrack and kube-proxy.

The expectations below are written from the kernel's rules (nf_conntrack_proto_tcp.c: the four
window bounds; INVALID before 6.1, IGNORE for old data/ACKs and small overshoots since 6.1;
mid-stream pickup with nf_conntrack_tcp_loose; early_drop of non-ASSURED entries) and the two
mitigations (KUBE-FORWARD's `--ctstate INVALID -j DROP`, `nf_conntrack_tcp_be_liberal=1`),
then checked against what each emulated download did.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kplab.repro.causes import CAUSES
from kplab.repro.matrix import KERNELS, MITIGATIONS, Cell, cell
from kplab.scenario.load import builtin

BASE = builtin("matrix")


@dataclass(frozen=True)
class Expect:
    ended: str
    server_reset: bool
    escaped: bool
    reason: str | None = None  # a conntrack reason that must be among the client node's


def expect(cause: str, kernel: str, mitigation: str) -> Expect:
    drop = mitigation in ("drop-invalid", "both")
    liberal = mitigation in ("be-liberal", "both")
    old = kernel == "5.4"
    if cause in ("old-duplicate", "regression-74839"):
        if liberal:
            return Expect("completed", False, False)
        if not old:  # 6.1: old data is IGNOREd, still NATed
            return Expect("completed", False, False, "IGNORE: SEQ is under lower bound")
        if drop:  # INVALID on the server's node already: its own KUBE-FORWARD rule drops it there
            return Expect("completed", False, False)
        return Expect("reset", True, True, "SEQ is under the lower bound")
    if cause == "beyond-window-small":
        if liberal:
            return Expect("completed", False, False)
        if not old:
            return Expect("completed", False, False, "IGNORE: 1002 bytes more than expected")
        return (
            Expect("completed", False, False)
            if drop
            else Expect("reset", True, True, "SEQ is over the upper")
        )
    if cause == "beyond-window-large":
        if liberal or drop:
            return Expect("completed", False, False)
        return Expect("reset", True, True, "SEQ is over")
    if cause == "ack-unseen":
        # INVALID on every kernel; the client's RST carries the bogus ACK as its seq: not exact.
        if liberal or drop:
            return Expect("completed", False, False)
        return Expect("completed", False, True, "ACK is over")
    if cause == "delayed-ack":
        if liberal:
            return Expect("completed", False, False)
        if not old:
            return Expect("completed", False, False, "IGNORE: ignored ACK under lower bound")
        if drop:  # dropped on the server's node, as above
            return Expect("completed", False, False)
        return Expect("completed", False, True, "ACK is under the lower bound")
    if cause == "lost-client-next-loose1":  # the client's next packet is DNATed again
        return Expect("completed", False, False)
    if cause in ("lost-client-next-loose0", "lost-server-next-loose0"):
        # no pickup: every packet of the flow is INVALID; the drop rule makes it a blackhole
        return Expect("stalled", not drop, not drop, "invalid new: no connection to pick up")
    if cause in ("lost-server-next-loose1", "table-full-unassured"):
        # picked up as a NEW flow with no NAT: no mitigation stops it
        return Expect("reset", True, True)
    if cause == "table-full-assured":  # nothing can be evicted: dropped, the download stalls
        return Expect("stalled", False, False)
    raise AssertionError(f"no expectation for {cause}")


CELLS = [(c.id, k, m) for c in CAUSES for k in KERNELS for m in MITIGATIONS]


@pytest.mark.parametrize(("cause", "kernel", "mitigation"), CELLS)
def test_cell(cause: str, kernel: str, mitigation: str) -> None:
    row = next(c for c in CAUSES if c.id == cause)
    got: Cell = cell(BASE, row, kernel, mitigation)
    want = expect(cause, kernel, mitigation)
    assert got.ended == want.ended, got
    assert got.server_reset == want.server_reset, got
    assert (got.escaped > 0) == want.escaped, got
    if want.reason is not None:
        assert any(want.reason in r for r in got.reasons), got
    if want.escaped:
        assert got.client_rst > 0, got  # every escaped packet meets a client with no such socket
    if cause == "table-full-assured":
        assert got.table_full_drops > 0, got
    if mitigation in ("drop-invalid", "both"):
        # the rule stops INVALID packets; a picked-up (NEW) flow is not INVALID and still escapes
        assert got.escaped == 0 or cause in ("lost-server-next-loose1", "table-full-unassured"), got
