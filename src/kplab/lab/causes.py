"""The causes of `kplab.repro.causes.CAUSES`, applied to a live download on the real kernel.

Same ids, same segments, same moments as the emulator's:
- crafted segments: sent from a raw socket in the server pod, sequence numbers computed from the
  flow as sniffed in the server pod (`kplab.lab.sniff`), with the emulator's formulas;
- entry lost: `conntrack -D` of the live entry in the client node (never `-U`/`-I` on it: they
  mark it liberal). "Just before the next packet of X": the node's raw PREROUTING (before
  conntrack) holds the other side's packets of this flow, the entry is deleted, and the hold is
  lifted once a packet of X has passed (counted by a rule in the same chain);
- table full: the node's table is filled through ctnetlink with other flows up to
  `nf_conntrack_max` (global, read-only in a child namespace, compared with the namespace's own
  count), then the entry is lost as above and one more filler takes its slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kplab.lab import ctnetlink
from kplab.lab.netns import Netns
from kplab.lab.sniff import ACK, FlowView, Injector
from kplab.packet import TcpFlags, fmt_ip

PSH = int(TcpFlags.PSH)
HOLD_COMMENT = "kplab-hold"
PASS_COMMENT = "kplab-pass"
HOLD_LIMIT_S = 3.0
QUIET_S = 0.1


@dataclass(slots=True)
class LabStage:
    """The live connection when the cause acts, and the means to act on it."""

    view: FlowView
    vip: int
    vip_port: int
    client_node: Netns
    injector: Injector
    fillers: ctnetlink.FillState
    notes: list[str]

    def send_from_server(self, seq: int, ack: int, length: int, flags: int = ACK | PSH) -> None:
        self.injector.send_from_server(self.view, seq, ack, length, flags)


def old_duplicate(st: LabStage) -> None:
    v = st.view
    st.send_from_server(v.server_end - v.client_maxwin - 2 * 1460, v.client_end, 1460)


def regression_forged(st: LabStage) -> None:
    st.send_from_server(st.view.client_ack - 100_000, st.view.client_end, 7)


def beyond_window(overshoot_windows: int) -> Callable[[LabStage], None]:
    def apply(st: LabStage) -> None:
        v = st.view
        st.send_from_server(v.server_maxend + 1 + overshoot_windows * v.client_maxwin, v.client_end, 1000)

    return apply


def ack_unseen(st: LabStage) -> None:
    st.send_from_server(st.view.server_end, st.view.client_end + 100_000, 0, ACK)


def delayed_ack(st: LabStage) -> None:
    v = st.view
    st.send_from_server(v.server_end, v.client_end - max(v.server_maxwin, 66_000) - 1000, 0, ACK)


def _client_side(st: LabStage) -> list[str]:
    v = st.view
    return ["-s", fmt_ip(v.client), "-d", fmt_ip(st.vip), "-p", "tcp", "--sport", str(v.client_port),
            "--dport", str(st.vip_port)]  # fmt: skip


def _server_side(st: LabStage) -> list[str]:
    v = st.view
    return ["-s", fmt_ip(v.server), "-d", fmt_ip(v.client), "-p", "tcp", "--sport", str(v.server_port),
            "--dport", str(v.client_port)]  # fmt: skip


def _rule(match: list[str], comment: str, drop: bool) -> list[str]:
    return [*match, "-m", "comment", "--comment", comment, *(["-j", "DROP"] if drop else [])]


def _passed(node: Netns) -> int:
    for line in node.run(["iptables-save", "-c", "-t", "raw"]).stdout.splitlines():
        if PASS_COMMENT in line and line.startswith("["):
            return int(line[1:].split(":", 1)[0])
    return 0


def _wait(node: Netns, done: Callable[[int], bool]) -> bool:
    end = time.monotonic() + HOLD_LIMIT_S
    while not done(_passed(node)):
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def before_next(st: LabStage, next_sender: str, action: Callable[[], None]) -> None:
    """Make `action` happen just before the flow's next packet from `next_sender` reaches the node.

    The server's packets of the flow are held (dropped in raw PREROUTING, before conntrack; TCP
    retransmits them). Client next: act, then wait for a client packet to pass (its ACKs and
    window updates keep coming as its application reads), then release. Server next: wait until
    the client has gone quiet (nothing left to acknowledge), act, release: the server's
    retransmission is the next packet. Client packets are never dropped.
    """
    node = st.client_node
    held, counted = _server_side(st), _client_side(st)
    node.run(["iptables", "-t", "raw", "-I", "PREROUTING", *_rule(held, HOLD_COMMENT, True)])
    node.run(["iptables", "-t", "raw", "-A", "PREROUTING", *_rule(counted, PASS_COMMENT, False)])
    try:
        if next_sender == "client":
            action()
            if not _wait(node, lambda n: n > 0):
                st.notes.append(f"no client packet within {HOLD_LIMIT_S} s: hold lifted anyway")
        else:
            last = [-1, time.monotonic()]

            def quiet(n: int) -> bool:
                if n != last[0]:
                    last[:] = [n, time.monotonic()]
                return time.monotonic() - last[1] > QUIET_S

            if not _wait(node, quiet):
                st.notes.append(f"the client never went quiet within {HOLD_LIMIT_S} s")
            action()
    finally:
        node.run(["iptables", "-t", "raw", "-D", "PREROUTING", *_rule(held, HOLD_COMMENT, True)])
        node.run(["iptables", "-t", "raw", "-D", "PREROUTING", *_rule(counted, PASS_COMMENT, False)])


def delete_entry(st: LabStage) -> None:
    """`conntrack -D` of the live entry, as a ctnetlink IPCTNL_MSG_CT_DELETE of its original tuple."""
    v = st.view
    if not ctnetlink.delete(st.client_node, [(v.client, st.vip, v.client_port, st.vip_port)]):
        st.notes.append("the live entry was not found to delete")


def entry_lost(next_sender: str) -> Callable[[LabStage], None]:
    def apply(st: LabStage) -> None:
        before_next(st, next_sender, lambda: delete_entry(st))

    return apply


def table_full(assured: bool) -> Callable[[LabStage], None]:
    def apply(st: LabStage) -> None:
        st.fillers.top_up(st.client_node, assured)

        def lose() -> None:
            delete_entry(st)
            st.fillers.top_up(st.client_node, assured)

        before_next(st, "server", lose)

    return apply


LAB_CAUSES: dict[str, Callable[[LabStage], None]] = {
    "old-duplicate": old_duplicate,
    "beyond-window-small": beyond_window(0),
    "beyond-window-large": beyond_window(4),
    "ack-unseen": ack_unseen,
    "delayed-ack": delayed_ack,
    "lost-client-next-loose1": entry_lost("client"),
    "lost-client-next-loose0": entry_lost("client"),
    "lost-server-next-loose1": entry_lost("server"),
    "lost-server-next-loose0": entry_lost("server"),
    "table-full-unassured": table_full(False),
    "table-full-assured": table_full(True),
    "regression-74839": regression_forged,
}
