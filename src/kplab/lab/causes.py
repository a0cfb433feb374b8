"""The causes of `kplab.repro.causes.CAUSES`, applied to a live download on the real kernel.

Same ids, same segments, same moments as the emulator's:
- every cause starts with the client application stopped at the trigger (its window closed, the
  flow standing still), so how long the lab takes to act (a loaded machine) changes nothing;
- crafted segments: sent from a raw socket in the server pod, sequence numbers computed from the
  flow as sniffed in the server pod (`kplab.lab.sniff`), with the emulator's formulas (the client
  reads on after);
- entry lost: `conntrack -D` of the live entry in the client node, as a ctnetlink message
  (never `-U`/`-I` on it: they mark it liberal). "Just before the next packet of X": packets
  are held in queues (a paused token bucket: nothing dropped) and released in the order
  wanted, see `before_next`; rules in the node's raw PREROUTING (before conntrack, counting
  only) say who passed;
- table full: the node's table is filled through ctnetlink with other flows up to
  `nf_conntrack_max` (global, read-only in a child namespace, compared with the namespace's own
  count; all but a few slots before the download starts, the rest when the cause acts), then
  the entry is lost as above and one more filler takes its slot.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kplab.lab import ctnetlink
from kplab.lab.netns import Netns
from kplab.lab.sniff import ACK, FlowView, Injector
from kplab.packet import TcpFlags, fmt_ip

PSH = int(TcpFlags.PSH)
QUIET_COMMENT = "kplab-client"
PASS_COMMENT = "kplab-pass"
# Bounds of the condition waits below (each returns as soon as its condition holds): generous,
# so a loaded machine only waits longer, never stages differently; a wait that runs out is noted.
HOLD_LIMIT_S = 30.0
QUIET_S = 0.1
BURST_PACKETS = 4


class Hold(Protocol):
    """A queue that can hold what leaves an interface, and release it in order."""

    def hold(self, on: bool) -> None: ...

    def backlog(self) -> int: ...


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
    # True: stop the client application, False: continue it. It is stopped when the cause starts
    # (at the trigger, `kplab.lab.matrix.wait_trigger`): the flow stands still while the lab prepares.
    pause_client: Callable[[bool], None]
    server_queue: Hold  # the fabric's port towards the client node
    server_sent: Callable[[], int]  # packets the server has sent so far (sniffed in its pod)
    client_queue: Hold  # the client pod's own egress

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


def _rule(match: list[str], comment: str) -> list[str]:
    return [*match, "-m", "comment", "--comment", comment]


def _passed(node: Netns, comment: str) -> int:
    for line in node.run(["iptables-save", "-c", "-t", "raw"]).stdout.splitlines():
        if comment in line and line.startswith("["):
            return int(line[1:].split(":", 1)[0])
    return 0


def _state(st: LabStage) -> str:
    """What the node and the flow looked like when a wait ran out (for the note)."""
    v, node = st.view, st.client_node
    raw = [ln for ln in node.run(["iptables-save", "-c", "-t", "raw"]).stdout.splitlines() if "kplab" in ln]
    port = f"sport={v.client_port} "
    entries = [ln for ln in node.run(["conntrack", "-L"], check=False).stdout.splitlines() if port in ln]
    return (
        f"raw: {raw}; entries: {entries}; client queue {st.client_queue.backlog()}p, "
        f"server queue {st.server_queue.backlog()}p; server sent {st.server_sent()} packets; "
        f"view at the trigger: received {v.received}, {v.packets} packets"
    )


def _note(st: LabStage, what: str) -> None:
    st.notes.append(f"{what} ({_state(st)})")


def _wait(node: Netns, done: Callable[[int], bool], comment: str) -> bool:
    end = time.monotonic() + HOLD_LIMIT_S
    while not done(_passed(node, comment)):
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def before_next(st: LabStage, next_sender: str, action: Callable[[], None]) -> None:
    """Make `action` happen just before the flow's next packet from `next_sender` reaches the node."""
    if next_sender == "client":
        _before_client(st, action)
    else:
        _before_server(st, action)


def _before_client(st: LabStage, action: Callable[[], None]) -> None:
    """The client's packets queue in its own egress while the server's keep coming (the client
    keeps acknowledging them) until some wait; then the server's are held in the fabric too, the
    action runs, and the client's queue goes first."""
    node = st.client_node
    held: list[Hold] = []
    try:
        st.client_queue.hold(True)
        held.append(st.client_queue)
        _add(node, _client_side(st), PASS_COMMENT)
        st.pause_client(False)  # the client stopped at the trigger reads on: its ACKs queue
        _wait_backlog(st, st.client_queue, 1)
        st.server_queue.hold(True)
        held.append(st.server_queue)
        action()
        node.run(["iptables", "-t", "raw", "-Z", "PREROUTING"])  # count from the action on
        st.client_queue.hold(False)
        held.remove(st.client_queue)
        if not _wait(node, lambda n: n > 0, PASS_COMMENT):
            _note(st, f"no client packet passed within {HOLD_LIMIT_S} s")
    finally:
        for q in held:
            q.hold(False)
        _remove(node, _client_side(st), PASS_COMMENT)


def _before_server(st: LabStage, action: Callable[[], None]) -> None:
    """The server's packets queue in the fabric; as soon as the server has sent a burst (the client
    read on and opened its window; sniffed in the server pod), the client application is paused
    (SIGSTOP) so its receive queue keeps unread data, as the emulated client's does: it reads on
    (and sends its window update) after the server's packets. Once the client has gone quiet, its
    egress is held too, the action runs and the server's burst goes; the client's queue goes only
    once a server packet has passed the node. So nothing the client's kernel sends on its own
    meanwhile (a late delayed ACK, a keepalive probe once the client has idled KEEPALIVE_S, which a
    slow machine reaches) can overtake the server's packet: the order is the same at any speed."""
    node = st.client_node
    held: list[Hold] = []
    paused = False
    try:
        sent = st.server_sent()
        st.server_queue.hold(True)
        held.append(st.server_queue)
        _add_rules(node, [(_client_side(st), QUIET_COMMENT), (_server_side(st), PASS_COMMENT)])
        st.pause_client(False)  # the client stopped at the trigger reads on: its window opens
        _wait_sent(st, sent + BURST_PACKETS)  # a window update let a burst go, the client reads on
        st.pause_client(True)
        paused = True
        if not _wait(node, _quiet(), QUIET_COMMENT):
            _note(st, f"the client never went quiet within {HOLD_LIMIT_S} s")
        st.client_queue.hold(True)
        held.append(st.client_queue)
        # A client packet already past its queue when the hold began reaches the node first.
        if not _wait(node, _quiet(), QUIET_COMMENT):
            _note(st, f"the client's packets in flight did not settle within {HOLD_LIMIT_S} s")
        action()
        node.run(["iptables", "-t", "raw", "-Z", "PREROUTING"])  # count from the action on
        st.server_queue.hold(False)
        held.remove(st.server_queue)
        if not _wait(node, lambda n: n > 0, PASS_COMMENT):
            _note(st, f"no server packet passed within {HOLD_LIMIT_S} s")
    finally:
        for q in held:
            q.hold(False)
        if paused:
            st.pause_client(False)
        _remove(node, _client_side(st), QUIET_COMMENT)
        _remove(node, _server_side(st), PASS_COMMENT)


def _wait_backlog(st: LabStage, queue: Hold, packets: int) -> None:
    """Until `packets` wait in the queue (bounded)."""
    end = time.monotonic() + HOLD_LIMIT_S
    while queue.backlog() < packets:
        if time.monotonic() > end:
            _note(st, f"fewer than {packets} packets queued within {HOLD_LIMIT_S} s")
            return
        time.sleep(0.002)


def _wait_sent(st: LabStage, packets: int) -> None:
    """Until the server has sent `packets` (polled fast: the client is paused right after)."""
    end = time.monotonic() + HOLD_LIMIT_S
    while st.server_sent() < packets:
        if time.monotonic() > end:
            _note(st, f"the server sent no burst within {HOLD_LIMIT_S} s")
            return
        time.sleep(0.0002)


def _quiet() -> Callable[[int], bool]:
    """True once the counter has not moved for QUIET_S."""
    last = [-1.0, time.monotonic()]

    def done(n: int) -> bool:
        if n != last[0]:
            last[:] = [n, time.monotonic()]
        return time.monotonic() - last[1] > QUIET_S

    return done


def _add(node: Netns, match: list[str], comment: str) -> None:
    _add_rules(node, [(match, comment)])


def _add_rules(node: Netns, rules: list[tuple[list[str], str]]) -> None:
    """Append counting rules to the node's raw PREROUTING in one `iptables-restore` (one process)."""
    lines = ["*raw", *(shlex.join(["-A", "PREROUTING", *_rule(m, c)]) for m, c in rules), "COMMIT", ""]
    node.run(["iptables-restore", "--noflush"], input="\n".join(lines))


def _remove(node: Netns, match: list[str], comment: str) -> None:
    node.run(["iptables", "-t", "raw", "-D", "PREROUTING", *_rule(match, comment)], check=False)


def delete_entry(st: LabStage) -> None:
    """`conntrack -D` of the live entry: the same IPCTNL_MSG_CT_DELETE of its original tuple, sent
    directly. (conntrack-tools 1.4.7 dumps the whole table to filter before deleting: seconds on
    a full table, while the flow's packets are held.)"""
    v = st.view
    if not ctnetlink.delete(st.client_node, [(v.client, st.vip, v.client_port, st.vip_port)]):
        st.notes.append("the live entry was not found to delete")


def entry_lost(next_sender: str) -> Callable[[LabStage], None]:
    def apply(st: LabStage) -> None:
        before_next(st, next_sender, lambda: delete_entry(st))

    return apply


def table_full(assured: bool) -> Callable[[LabStage], None]:
    def apply(st: LabStage) -> None:
        def lose() -> None:
            # All while the flow is held (the table was filled up to a few slots before the
            # download): filling the last slots before the hold raced the download, which a
            # loaded machine could let finish before the cause acted.
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
