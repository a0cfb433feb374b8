"""Linux conntrack as a sans-IO library: packets and `now_ns` in, verdicts out.

One `Conntrack` per network namespace (its table, counters and sysctls); nothing reads a clock
or does I/O, and randomness (NAT port offsets) comes from the injected `rng`.

How an emulator drives it, hook by hook (the kernel's order)::

    ct = Conntrack(profile=get_profile("6.1"), sysctls=Sysctls(), rng=random.Random(seed))

    # PREROUTING (or OUTPUT for locally generated packets), after the raw table:
    res = ct.lookup(pkt, "PREROUTING", now_ns, notrack=raw_table_said_notrack)
    if res.verdict == "DROP": drop the packet (table full; stats.drop counted)
    view = res.view(now_ns)        # CtView for the rule engine; None means INVALID
    # ... raw/mangle/nat rules run with `view`; CONNMARK writes view.mark, then:
    ct.write_back(res, view)
    if ct.nat_pending(res, "PREROUTING"):           # NEW entry, not yet bound
        ct.bind_nat(res, nat_decision_or_None, "PREROUTING")
    ct.apply_nat(pkt, res, "PREROUTING")             # DNAT now; reverse SNAT on replies
    # ... routing, FORWARD/INPUT filter rules with `view` ...
    # POSTROUTING (or INPUT for local delivery):
    if ct.nat_pending(res, "POSTROUTING"):
        ct.bind_nat(res, snat_or_masquerade_or_None, "POSTROUTING", out_addr=iface_addr)
    ct.apply_nat(pkt, res, "POSTROUTING")            # SNAT now; reverse DNAT on replies
    if not ct.confirm(res, now_ns): drop the packet (insert clash)

`CtResult` carries `ctstate` (NEW/ESTABLISHED/RELATED/UNTRACKED/INVALID), `ignored` (the kernel's
IGNORE: entry attached and NATed, not updated), `verdict` (ACCEPT/DROP), `reason` (the kernel's
log text), `entry` and `direction`; `kind` folds them into NEW/ESTABLISHED/RELATED/INVALID/
IGNORE/DROP/UNTRACKED. INVALID packets have no entry: no NAT is applied to them.

Also: `ct.delete(FiveTuple)` (conntrack -D), `ct.flush()`, `ct.gc(now_ns)` (expired entries),
`ct.entries()`, `ct.find(FiveTuple)`, `ct.stats` (CtStats, /proc/net/stat/nf_conntrack names),
`ct.set_sysctl(key, value)`, `listing(ct.entries(), now_ns, extended)` (conntrack -L),
`stats_line(ct.stats)` (conntrack -S).
Kernel profiles: `get_profile("5.4" | "6.1" | "host", host_release=uname_r)`.
"""

from kplab.netfilter.conntrack.entry import Entry, TcpSide
from kplab.netfilter.conntrack.listing import entry_line, listing, stats_line
from kplab.netfilter.conntrack.profiles import (
    KERNEL_PROFILES,
    PROFILE_5_4,
    PROFILE_6_1,
    PROFILES,
    Profile,
    Sysctls,
    get_profile,
    profile_for_release,
)
from kplab.netfilter.conntrack.table import Conntrack, CtResult, CtStats
from kplab.netfilter.conntrack.tcp_table import TcpState

__all__ = [
    "KERNEL_PROFILES",
    "PROFILES",
    "PROFILE_5_4",
    "PROFILE_6_1",
    "Conntrack",
    "CtResult",
    "CtStats",
    "Entry",
    "Profile",
    "Sysctls",
    "TcpSide",
    "TcpState",
    "entry_line",
    "get_profile",
    "listing",
    "profile_for_release",
    "stats_line",
]
