"""Findings about the dump itself: what it cannot tell (a table missing, another iptables backend),
and kube-proxy's IPVS mode, where the iptables-mode checks do not apply as such."""

from __future__ import annotations

from kplab.diagnose.inputs import Inputs
from kplab.diagnose.model import Finding, Severity
from kplab.diagnose.rules import RuleFacts

SHOW = 3

MEANS_NO_FILTER = (
    "kube-proxy's drop of conntrack-INVALID packets lives in the filter table (KUBE-FORWARD), and this dump "
    "has no filter table (`iptables-save -t nat` prints only nat): whether INVALID Service replies "
    "are dropped "
    "cannot be told from it. This is not a finding about the node, only about the input."
)
FIX_NO_FILTER = (
    "Run `iptables-save` (every table, no -t) on the node and give that file with --iptables-save."
)
MEANS_OTHER_BACKEND = (
    "iptables-save wrote that the other iptables backend (legacy or nft) also holds tables on this "
    "node; they "
    "are not in this dump. Rules there (kube-proxy's, if it uses that backend) filter and NAT the "
    "same packets."
)
FIX_OTHER_BACKEND = (
    "Also run the other backend's save (iptables-legacy-save, or iptables-nft-save) and diagnose that file; "
    "kube-proxy's own rules are in the backend its image uses."
)
MEANS_IPVS = (
    "kube-proxy runs in IPVS mode on this node: Services are balanced by IPVS (`ipvsadm -Ln` lists "
    "them), not "
    "by KUBE-SEP DNAT rules, and IPVS undoes the NAT of replies from its own connection table, so the "
    "iptables-mode verdict (invalid-not-dropped) is not decided from this dump. What still applies: "
    "kube-proxy "
    "turns conntrack on for IPVS (net.ipv4.vs.conntrack=1), so conntrack's INVALID verdicts, "
    "nf_conntrack_tcp_be_liberal, a drop of INVALID on the forward path, and a lost conntrack entry with "
    "loose=1 (loose-pickup-risk) matter as they do in iptables mode; IPVS's own timeouts "
    "(`ipvsadm -L --timeout`) are a second place where an idle connection is forgotten."
)
FIX_IPVS = (
    "Give `ipvsadm -Ln` and `ipset save` alongside, and check the forward-path INVALID drop and be_liberal "
    "shown here."
)


def dump_findings(inp: Inputs) -> list[Finding]:
    rules = inp.rules
    if rules is None:
        return []
    out: list[Finding] = []
    if (rules.service_dnat or rules.kube_proxy or rules.ipvs) and not rules.forward_path_given:
        out.append(_no_filter(rules))
    if rules.other_backend is not None:
        title = "Another iptables backend holds tables this dump does not show"
        out.append(Finding("other-iptables-backend", Severity.INFO, title, MEANS_OTHER_BACKEND,
                           [rules.other_backend], [FIX_OTHER_BACKEND]))  # fmt: skip
    if rules.ipvs:
        out.append(_ipvs(rules, inp))
    return out


def _no_filter(rules: RuleFacts) -> Finding:
    evidence = [f"{rules.file}: tables in the dump: {', '.join(rules.tables) or 'none'} (no filter)"]
    evidence += [rules.text(r) for r in rules.service_dnat[:SHOW]]
    return Finding(
        "cannot-tell-invalid-drop", Severity.INFO,
        "Cannot tell whether INVALID packets are dropped: the dump has no filter table",
        MEANS_NO_FILTER, evidence, [FIX_NO_FILTER], {"tables": rules.tables},
    )  # fmt: skip


def _ipvs(rules: RuleFacts, inp: Inputs) -> Finding:
    evidence = [rules.text(r) for r in rules.ipvs[:SHOW]]
    if len(rules.ipvs) > SHOW:
        evidence.append(f"... and {len(rules.ipvs) - SHOW} more IPVS-mode rules")
    drop = rules.full_drop
    if drop is not None:
        evidence.append(f"{rules.text(drop.rule)}  (INVALID is dropped on the forward path)")
    elif rules.forward_path_given:
        evidence.append(f"{rules.file}: no rule drops --ctstate INVALID on the forward path")
    evidence.append(inp.be_liberal()[1])
    data = {"ipvs_rules": len(rules.ipvs), "invalid_drop": drop is not None}
    title = "kube-proxy IPVS mode: Service NAT is done by IPVS, not by iptables rules"
    return Finding("ipvs-mode", Severity.INFO, title, MEANS_IPVS, evidence, [FIX_IPVS], data)
