"""`Conntrack`: one network namespace's table (`nf_conntrack_in`, `__nf_conntrack_confirm`, GC).

Sans-IO: the caller passes packets, hook names and `now_ns`; nothing here reads a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Final

from kplab.netfilter.conntrack import nat as natmod
from kplab.netfilter.conntrack.entry import (
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DST_NAT_DONE,
    IPS_DYING,
    IPS_SEEN_REPLY,
    IPS_SRC_NAT_DONE,
    Entry,
    invert_key,
    pack,
)
from kplab.netfilter.conntrack.other import ECHO_REPLY_OF, ICMP_ERRORS, icmp_key, timeout_for, udp_packet
from kplab.netfilter.conntrack.profiles import PROFILE_6_1, Profile, S, Sysctls
from kplab.netfilter.conntrack.tcp import tcp_error, tcp_new, tcp_packet
from kplab.netfilter.conntrack.tcp_fast import established_ack
from kplab.netfilter.conntrack.tcp_verdict import ACCEPT, IGNORE, KILLED, REPEAT, UNREFRESHED
from kplab.netfilter.ctview import CtView, FiveTuple, Nat
from kplab.packet import ICMP, TCP, UDP, Packet, ip_length

NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED, DROP = (
    "NEW",
    "ESTABLISHED",
    "RELATED",
    "INVALID",
    "UNTRACKED",
    "DROP",
)
TABLE_FULL: Final = "table full, dropping packet"
_SEEN_AND_ASSURED: Final = IPS_SEEN_REPLY | IPS_ASSURED


@dataclass(slots=True)
class CtStats:
    """The per-netns counters, named as /proc/net/stat/nf_conntrack names them (`conntrack -S`).

    As on 6.18 (checked in the lab), `found`, `new`, `delete` and `insert` stay 0 on the packet
    path; `entries` is the table size.
    """

    entries: int = 0
    clashres: int = 0
    found: int = 0
    new: int = 0
    invalid: int = 0
    ignore: int = 0
    delete: int = 0
    chainlength: int = 0
    insert: int = 0
    insert_failed: int = 0
    drop: int = 0
    early_drop: int = 0
    icmp_error: int = 0
    expect_new: int = 0
    expect_create: int = 0
    expect_delete: int = 0
    search_restart: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def account(acct: list[int], direction: int, pkt: Packet) -> None:
    """`nf_ct_acct_update`: one more packet and its IP length for this direction."""
    acct[2 * direction] += 1
    acct[2 * direction + 1] += ip_length(pkt)


@dataclass(slots=True, init=False)
class CtResult:
    """What the tracker decided for one packet.

    `ctstate` is what `--ctstate` sees (NEW, ESTABLISHED, RELATED, UNTRACKED, or INVALID when no
    entry is attached). `ignored` marks the kernel's IGNORE: entry attached (NATed) but not
    updated. `verdict` is ACCEPT, or DROP when the table was full. `reason` is the kernel's
    INVALID/IGNORE text. `entry` is None for INVALID/DROP/UNTRACKED; `direction` 0 = ORIGINAL.
    """

    ctstate: str
    entry: Entry | None = None
    direction: int = 0
    reason: str | None = None
    ignored: bool = False
    verdict: str = "ACCEPT"
    related: bool = False
    refreshed: bool = True  # False: accepted without refreshing timeout and counters

    def __init__(
        self,
        ctstate: str,
        entry: Entry | None = None,
        direction: int = 0,
        reason: str | None = None,
        ignored: bool = False,
        verdict: str = "ACCEPT",
        related: bool = False,
        refreshed: bool = True,
    ) -> None:
        # written out: the dataclass's generated __init__ runs interpreted, once per packet
        self.ctstate = ctstate
        self.entry = entry
        self.direction = direction
        self.reason = reason
        self.ignored = ignored
        self.verdict = verdict
        self.related = related
        self.refreshed = refreshed

    @property
    def kind(self) -> str:
        """NEW / ESTABLISHED / RELATED / INVALID / IGNORE / DROP / UNTRACKED."""
        if self.verdict == DROP:
            return DROP
        return "IGNORE" if self.ignored else self.ctstate

    def view(self, now_ns: int = 0) -> CtView | None:
        """The CtView the rule engine matches on (None: INVALID)."""
        entry = self.entry
        if self.ctstate == UNTRACKED:
            return CtView(state=UNTRACKED)
        if entry is None:
            return None
        return CtView(
            state=self.ctstate,
            direction="REPLY" if self.direction else "ORIGINAL",
            status=entry.status & 0xFFFF,
            orig=entry.orig,
            reply=entry.reply,
            mark=entry.mark,
            expires_s=max(0, (entry.timeout_ns - now_ns) // S),
        )


@dataclass
class Conntrack:
    """One netns's conntrack. See the package docstring for how an emulator drives it."""

    profile: Profile = PROFILE_6_1
    sysctls: Sysctls = field(default_factory=Sysctls)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    stats: CtStats = field(default_factory=CtStats)
    fast_path: bool = True  # tcp_fast for in-window ACKs on established entries (tests turn it off)

    def __post_init__(self) -> None:
        self._table: dict[int, Entry] = {}  # both tuples of every confirmed entry
        self._unassured: dict[int, Entry] = {}  # early_drop candidates, oldest first
        self.timeouts = self.sysctls.tcp_timeouts_ns()

    # -- configuration --------------------------------------------------------------------
    def set_sysctl(self, key: str, value: str | int) -> None:
        self.sysctls.set(key, str(value))
        self.timeouts = self.sysctls.tcp_timeouts_ns()

    # -- the hook --------------------------------------------------------------------------
    def lookup(self, pkt: Packet, hook: str, now_ns: int, notrack: bool = False) -> CtResult:
        """`nf_conntrack_in`: find or create the packet's entry and run the protocol tracker.

        Call once per packet at PREROUTING (forwarded/received) or OUTPUT (locally sent).
        A NEW entry is not in the table until `confirm`.
        """
        if notrack:
            if self.profile.counts_ignore_stat:
                self.stats.ignore += 1
            return CtResult(UNTRACKED)
        proto = pkt.proto
        if proto == ICMP:
            if pkt.icmp_type in ICMP_ERRORS:
                return self._icmp_error(pkt, now_ns)
            key = icmp_key(pkt)
        else:  # entry.pack, inlined: this is the per-packet path
            key = (((pkt.src << 32) | pkt.dst) << 40) | (pkt.sport << 24 | pkt.dport << 8 | proto)
        for _ in range(2):  # a reopen (-NF_REPEAT) looks the packet up once more
            entry = self._table.get(key)
            if entry is not None and entry.timeout_ns <= now_ns:
                self._remove(entry)
                entry = None
            if entry is None:
                return self._new(pkt, key, hook, now_ns)
            direction = 0 if key == entry.orig_key else 1
            if (
                self.fast_path
                and entry.proto == TCP
                and entry.status & _SEEN_AND_ASSURED == _SEEN_AND_ASSURED
                and established_ack(
                    entry,
                    direction,
                    pkt,
                    self.timeouts,
                    self.sysctls.nf_conntrack_tcp_max_retrans,
                    now_ns,
                )
            ):
                if entry.acct is not None:
                    account(entry.acct, direction, pkt)
                return CtResult(ESTABLISHED, entry, direction)
            result = self._track(entry, direction, pkt, now_ns)
            if result is not None:
                if (
                    entry.acct is not None
                    and result.entry is not None
                    and result.refreshed
                    and not result.ignored
                ):
                    account(entry.acct, direction, pkt)
                return result
            self._remove(entry)
        raise AssertionError("reopen repeated twice")  # pragma: no cover

    def _ctinfo(self, entry: Entry, direction: int) -> str:
        if direction or entry.status & IPS_SEEN_REPLY:
            return ESTABLISHED
        return NEW

    def _track(self, entry: Entry, direction: int, pkt: Packet, now_ns: int) -> CtResult | None:
        """Run the protocol tracker on an existing entry; None means: reopen, look up again."""
        ctstate = self._ctinfo(entry, direction)
        if entry.proto == TCP:
            reason = tcp_error(pkt)
            if reason is not None:
                self.stats.invalid += 1
                return CtResult(INVALID, reason=reason)
            status = entry.status
            action, reason = tcp_packet(
                entry, direction, pkt, self.profile, self.sysctls, self.timeouts, now_ns
            )
            if action == ACCEPT:
                if (entry.status ^ status) & IPS_ASSURED:
                    self._unassured.pop(entry.orig_key, None)
            elif action == IGNORE:
                if direction:
                    entry.status |= IPS_SEEN_REPLY
                return CtResult(ctstate, entry, direction, reason, ignored=True)
            elif action == REPEAT:
                return None
            elif action == KILLED:
                self._remove(entry)
            elif action == UNREFRESHED:
                if direction:
                    entry.status |= IPS_SEEN_REPLY
                return CtResult(ctstate, entry, direction, refreshed=False)
            else:  # the tracker's INVALID
                self.stats.invalid += 1
                return CtResult(INVALID, reason=reason)
        elif entry.proto == UDP:
            udp_packet(entry, self.profile, self.sysctls, now_ns)
        else:
            entry.timeout_ns = now_ns + timeout_for(entry.proto, self.sysctls)
        if direction:
            entry.status |= IPS_SEEN_REPLY
        return CtResult(ctstate, entry, direction)

    def _new(self, pkt: Packet, key: int, hook: str, now_ns: int) -> CtResult:
        """`init_conntrack`: make room (early_drop), then the protocol's `new` decides."""
        limit = self.sysctls.nf_conntrack_max  # 0: no limit, as in the kernel
        if limit and len(self._table) // 2 + 1 > limit and not self._early_drop(now_ns):
            self.stats.drop += 1
            return CtResult(INVALID, reason=TABLE_FULL, verdict=DROP)
        proto = pkt.proto
        entry = Entry(orig_key=key, reply_key=invert_key(key), proto=proto)
        if proto == TCP:
            reason = tcp_error(pkt)
            if reason is not None or not tcp_new(entry, pkt, self.sysctls):
                self.stats.invalid += 1
                return CtResult(INVALID, reason=reason or "invalid new: no connection to pick up")
        elif proto == ICMP:
            if pkt.icmp_type not in ECHO_REPLY_OF:
                self.stats.invalid += 1
                return CtResult(INVALID, reason="icmp: not a new connection")
            entry.reply_key = pack(pkt.dst, pkt.src, ICMP, pkt.sport, ECHO_REPLY_OF[pkt.icmp_type])
        elif proto == UDP:
            entry.udp_stream_ns = now_ns + 2 * S
        if self.sysctls.nf_conntrack_acct:
            entry.acct = [0, 0, 0, 0]
        result = self._track(entry, 0, pkt, now_ns)
        assert result is not None
        if entry.acct is not None and result.entry is not None and result.refreshed:
            account(entry.acct, 0, pkt)
        return result

    def _icmp_error(self, pkt: Packet, now_ns: int) -> CtResult:
        """`icmp_error_message`: an ICMP error is RELATED to the connection it quotes."""
        inner = pkt.inner
        entry = None
        if inner is not None:
            quoted = pack(inner.dst, inner.src, inner.proto, inner.dport, inner.sport)
            entry = self._table.get(quoted)
        if entry is None or entry.timeout_ns <= now_ns:
            self.stats.icmp_error += 1
            return CtResult(INVALID, reason="icmp: no connection for the quoted packet")
        direction = 0 if quoted == entry.orig_key else 1
        return CtResult(RELATED, entry, direction, related=True)

    def write_back(self, result: CtResult, view: CtView | None) -> None:
        """Store what rules changed in the view (CONNMARK's mark) back into the entry."""
        if result.entry is not None and view is not None:
            result.entry.mark = view.mark

    # -- NAT ------------------------------------------------------------------------------
    def nat_pending(self, result: CtResult, hook: str) -> bool:
        """Should the nat table be traversed at this hook? Only for a NEW entry not yet bound."""
        entry = result.entry
        if entry is None or entry.status & IPS_CONFIRMED or result.related:
            return False
        done = IPS_DST_NAT_DONE if natmod.is_dst_hook(hook) else IPS_SRC_NAT_DONE
        return not entry.status & done

    def bind_nat(self, result: CtResult, nat: Nat | None, hook: str, out_addr: int | None = None) -> bool:
        """Bind a nat-table decision (None: no rule matched, the null binding) to a NEW entry."""
        if not self.nat_pending(result, hook):
            return False
        assert result.entry is not None
        return natmod.bind(self._table, result.entry, nat, hook, out_addr, self.rng)

    def apply_nat(self, pkt: Packet, result: CtResult, hook: str) -> bool:
        """Rewrite the packet at this hook (DNAT at PREROUTING/OUTPUT, SNAT at POSTROUTING/INPUT)."""
        entry = result.entry
        if entry is None:
            return False
        if self.nat_pending(result, hook):
            self.bind_nat(result, None, hook)
        return natmod.apply(pkt, entry, result.direction, hook, result.related)

    # -- confirm, delete, GC ----------------------------------------------------------------
    def confirm(self, result: CtResult, now_ns: int) -> bool:
        """`__nf_conntrack_confirm` at POSTROUTING/INPUT: insert a NEW entry. False: clash, drop."""
        entry = result.entry
        if entry is None or entry.status & (IPS_CONFIRMED | IPS_DYING):
            return True
        if entry.orig_key in self._table or entry.reply_key in self._table:
            self.stats.insert_failed += 1
            self.stats.drop += 1
            return False
        entry.status |= IPS_CONFIRMED
        self._table[entry.orig_key] = entry
        self._table[entry.reply_key] = entry
        if not entry.status & IPS_ASSURED:
            self._unassured[entry.orig_key] = entry
        self.stats.entries = len(self._table) // 2
        return True

    def delete(self, tuple_: FiveTuple) -> bool:
        """`conntrack -D`: remove the entry with this tuple (either direction)."""
        entry = self._table.get(pack(tuple_.src, tuple_.dst, tuple_.proto, tuple_.sport, tuple_.dport))
        if entry is None:
            return False
        self._remove(entry)
        return True

    def flush(self) -> None:
        """`conntrack -F`."""
        self._table.clear()
        self._unassured.clear()
        self.stats.entries = 0

    def gc(self, now_ns: int) -> int:
        """The GC worker: remove every expired entry. Returns how many went."""
        expired = [e for k, e in self._table.items() if k == e.orig_key and e.timeout_ns <= now_ns]
        for entry in expired:
            self._remove(entry)
        return len(expired)

    def _remove(self, entry: Entry) -> None:
        entry.status |= IPS_DYING
        if self._table.get(entry.orig_key) is entry:
            del self._table[entry.orig_key]
        if self._table.get(entry.reply_key) is entry:
            del self._table[entry.reply_key]
        self._unassured.pop(entry.orig_key, None)
        self.stats.entries = len(self._table) // 2

    def _early_drop(self, now_ns: int) -> bool:
        """`early_drop`: reap expired entries, evict the oldest non-ASSURED one (stat early_drop).

        The kernel only scans the buckets near the new tuple's hash, so it can fail while a
        non-ASSURED entry exists elsewhere; we always find the oldest one.
        """
        while self._unassured:
            entry = next(iter(self._unassured.values()))
            self._remove(entry)
            if entry.timeout_ns <= now_ns:
                return True
            if not entry.status & IPS_ASSURED:
                self.stats.early_drop += 1
                return True
        return False

    # -- inspection -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._table) // 2

    def entries(self) -> list[Entry]:
        """Confirmed entries, oldest first."""
        return [e for k, e in self._table.items() if k == e.orig_key]

    def find(self, tuple_: FiveTuple) -> Entry | None:
        return self._table.get(pack(tuple_.src, tuple_.dst, tuple_.proto, tuple_.sport, tuple_.dport))
