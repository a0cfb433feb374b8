"""Findings about Service NAT and INVALID packets: is the escape possible, and what stops it."""

from __future__ import annotations

from kplab.diagnose.inputs import Inputs
from kplab.diagnose.model import Finding, Severity
from kplab.diagnose.nft import NftFacts
from kplab.diagnose.rules import FORWARD_PATH, InvalidDrop, RuleFacts

SHOW = 3  # rule lines quoted per kind before "... and N more"

FIX_DROP = (
    "Drop what conntrack calls INVALID on the forward path: upgrade kube-proxy to 1.15 or later (it writes "
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP), or add it yourself: "
    "iptables -I FORWARD -m conntrack --ctstate INVALID -j DROP"
)
FIX_DROP_MISSING = (
    "Drop what conntrack calls INVALID on the forward path. kube-proxy {version} or later writes "
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP itself (since 1.29 only when "
    "nf_conntrack_tcp_be_liberal was 0 when it started): find what removed it (restarting kube-proxy "
    "rewrites its chains), or add it yourself: iptables -I FORWARD -m conntrack --ctstate INVALID -j DROP"
)
FIX_LIBERAL = (
    "Or make conntrack accept out-of-window segments: sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1 "
    "on every node (kube-proxy >= 1.29: conntrack.tcpBeLiberal: true; older: a privileged DaemonSet), "
    "persisted in /etc/sysctl.d"
)
FIX_NFT_DROP = (
    "Or add a forward-hook drop next to kube-proxy's table: nft add table inet node-guard; "
    "nft add chain inet node-guard forward '{ type filter hook forward priority filter; }'; "
    "nft add rule inet node-guard forward ct state invalid drop"
)
FIX_ENTRIES = (
    "Keep entries from vanishing: headroom under nf_conntrack_max (see table-pressure), no conntrack -D/-F "
    "on live flows, nf_conntrack_tcp_timeout_established above the longest idle period (kube-proxy sets 24h)."
)
MEANS_BUG = (
    "A backend's segment that fails conntrack's window checks is accepted without its entry, so reverse NAT "
    "skips it: it reaches the client from the pod IP, the client answers with a RST, and that RST resets the "
    "server's connection (ECONNRESET mid-download)."
)
MEANS_DROP = (
    "A reply that conntrack calls INVALID is dropped before it can leave un-NATed, so the client never RSTs "
    "the pod IP. Not covered: traffic delivered to the node itself (INPUT: hostNetwork, NodePort to a local "
    "socket), and a lost conntrack entry while loose=1 (see loose-pickup-risk)."
)
MEANS_NFT = (
    "kube-proxy's nftables mode installs no ct state invalid drop (it relies on "
    "nf_conntrack_tcp_be_liberal=1, which it does not set by default), so the escaped-NAT reset of the "
    "iptables era is back on this node."
)
MEANS_LIBERAL = (
    "With nf_conntrack_tcp_be_liberal=1 conntrack accepts out-of-window segments (they keep their entry and "
    "are NATed); only out-of-window RSTs stay INVALID. A lost entry while loose=1 is not covered."
)
MEANS_LOOSE = (
    "With loose=1 (the default) the first server packet after its entry vanished (timeout, table full, "
    "conntrack -D/-F, a conntrackd failover) is picked up as a NEW entry without NAT: it leaves from the pod "
    "IP, the client RSTs it and the RST is tracked, so the server is reset. Neither the DROP rule nor "
    "be_liberal stops it."
)
METRIC = "kubeproxy_iptables_ct_state_invalid_dropped_packets_total"


def nat_findings(inp: Inputs) -> list[Finding]:
    rules, nft = inp.rules, inp.nft
    ipt_nat = rules is not None and bool(rules.service_dnat)
    nft_nat = nft is not None and bool(nft.kube_proxy_tables) and bool(nft.service_dnat)
    ipvs = rules is not None and bool(rules.ipvs)
    if not (ipt_nat or nft_nat or ipvs):
        return []
    liberal, liberal_where = inp.be_liberal()
    unmitigated = liberal is None or liberal == 0
    out: list[Finding] = []
    if not unmitigated:
        out.append(Finding("mitigated-by-be-liberal", Severity.INFO, "conntrack is liberal about TCP windows",
                           MEANS_LIBERAL, [liberal_where]))  # fmt: skip
    if rules is not None and ipt_nat and rules.forward_path_given:  # else: cannot-tell-invalid-drop
        drop = rules.full_drop
        if drop is not None:
            out.append(_drop_rule(rules, drop))
        elif unmitigated:
            out.append(_invalid_not_dropped(rules, liberal_where))
    if nft is not None and nft_nat:
        if nft.full_drop is not None:
            where = f"{nft.file}: {nft.full_drop}"
            title = "INVALID packets are dropped (nftables)"
            out.append(Finding("mitigated-by-drop-rule", Severity.INFO, title, MEANS_DROP, [where]))
        elif unmitigated:
            out.append(_nftables_no_drop(nft, liberal_where))
    loose, loose_where = inp.loose()
    if loose != 0:
        kind = "iptables" if ipt_nat else "nftables" if nft_nat else "IPVS"
        evidence = [loose_where, f"{kind} Service NAT present"]
        title = "A lost conntrack entry resets Service connections, whatever the fix"
        out.append(
            Finding("loose-pickup-risk", Severity.WARNING, title, MEANS_LOOSE, evidence, [FIX_ENTRIES])
        )
    return out


def _drop_rule(rules: RuleFacts, drop: InvalidDrop) -> Finding:
    metric = (
        f" Its nfacct counter {drop.nfacct} feeds kube-proxy's metric {METRIC}: watch it."
        if drop.nfacct
        else ""
    )
    return Finding(
        "mitigated-by-drop-rule", Severity.INFO, "INVALID packets are dropped on the forward path",
        MEANS_DROP + metric, [rules.text(r) for r in (*drop.path, drop.rule)], [],
        {"rule": rules.text(drop.rule), "nfacct": drop.nfacct},
    )  # fmt: skip


def _invalid_not_dropped(rules: RuleFacts, liberal_where: str) -> Finding:
    evidence = [rules.text(r) for r in rules.service_dnat[:SHOW]]
    if len(rules.service_dnat) > SHOW:
        evidence.append(f"... and {len(rules.service_dnat) - SHOW} more Service DNAT rules")
    chains = ", ".join(f"{t} {c}" for t, c in FORWARD_PATH)
    evidence.append(f"{rules.file}: no rule drops --ctstate INVALID on the forward path ({chains} and the "
                    "chains they jump to)")  # fmt: skip
    for partial in rules.invalid_drops:
        evidence.append(f"{rules.text(partial.rule)}  (only when: {'; '.join(partial.conditions)})")
    if rules.version_hint is not None:
        evidence.append(f"written by kube-proxy {rules.version_hint[0]} or later: {rules.version_hint[1]}")
    evidence.append(liberal_where)
    return Finding(
        "invalid-not-dropped", Severity.CRITICAL,
        "Service replies that conntrack calls INVALID leave un-NATed (the escaped-NAT reset)",
        MEANS_BUG, evidence, [_fix_drop(rules), FIX_LIBERAL],
        {"service_dnat_rules": len(rules.service_dnat), "partial_drop_rules": len(rules.invalid_drops)},
    )  # fmt: skip


def _fix_drop(rules: RuleFacts) -> str:
    """Never advise an upgrade to a version older than the one that wrote the dump."""
    if rules.version_hint is None:
        return FIX_DROP
    return FIX_DROP_MISSING.format(version=max(rules.version_hint[0], "1.15", key=_version_key))


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _nftables_no_drop(nft: NftFacts, liberal_where: str) -> Finding:
    evidence = [f"{nft.file}: kube-proxy nftables table(s): {', '.join(nft.kube_proxy_tables)}"]
    evidence += [f"{nft.file}: {d}" for d in nft.service_dnat[:SHOW]]
    evidence.append(f"{nft.file}: no rule drops ct state invalid in a forward-hook chain (or prerouting "
                    "after conntrack) or the chains they jump to")  # fmt: skip
    evidence += [f"{nft.file}: {where} (only when: {'; '.join(conds)})" for where, conds in nft.invalid_drops]
    if nft.xt_tables:
        evidence.append(f"{nft.file}: iptables-nft tables {', '.join(nft.xt_tables)} use xt matches that "
                        "JSON does not show: check them with --iptables-save")  # fmt: skip
    evidence.append(liberal_where)
    return Finding(
        "nftables-mode-no-invalid-drop", Severity.CRITICAL,
        "kube-proxy nftables mode without be_liberal: INVALID replies leave un-NATed", MEANS_NFT, evidence,
        [FIX_LIBERAL.replace("Or make", "Make"), FIX_NFT_DROP], {"service_dnat_rules": len(nft.service_dnat)},
    )  # fmt: skip
