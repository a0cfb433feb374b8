"""`kplab trace`: follow one packet through an iptables ruleset (see kplab.netfilter.tracer), or an
nftables one (`--nft`, see kplab.netfilter.nft.tracer).

Extension point: `load_rules_for_trace` is where a ruleset comes from. Today it reads an
iptables-save dump, restore input or `iptables -S` output (`--rules`); another source (kube-proxy manifests,
`--manifests`) adds a click option to `trace` and a branch there, returning a Ruleset.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace

import click

from kplab.errors import InputError
from kplab.netfilter import iproute, ipset
from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.iptables_s import parse_dump
from kplab.netfilter.model import Ruleset
from kplab.netfilter.tracenotes import ipvs_warning, node_for_trace, nodeport_warning, set_warning
from kplab.netfilter.tracer import (
    Probe,
    TraceReport,
    arrival_iface,
    fill_reasons,
    trace_stateful,
    trace_stateless_report,
)
from kplab.packet import PROTO_NUMBERS, ip, parse_ipport
from kplab.untrusted import read_text

CT_STATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")


def load_rules_for_trace(*, rules: str | None, lenient: bool) -> Ruleset:
    """The ruleset to trace. Raises InputError (one line) when it cannot be read or parsed."""
    if rules is None:
        raise InputError("trace: give --rules DUMP")
    return parse_dump(read_text(rules), rules, lenient=lenient)


def _address(option: str, text: str, *, port_required: bool) -> tuple[int, int | None]:
    try:
        addr, port = parse_ipport(text)
    except ValueError:
        raise InputError(f"{option}: not IP[:PORT]: '{text}'") from None
    if port_required and port is None:
        raise InputError(f"{option}: needs IP:PORT, got '{text}'")
    return addr, port


def make_probe(
    proto: str, src: str, dst: str, node_ips: tuple[str, ...], ctstate: str, in_iface: str | None
) -> Probe:
    number = PROTO_NUMBERS[proto]
    ports = proto != "icmp"
    src_addr, sport = _address("--src", src, port_required=False)
    dst_addr, dport = _address("--dst", dst, port_required=ports)
    try:
        nodes = tuple(ip(a) for a in node_ips)
    except ValueError:
        raise InputError(f"--node-ip: not an IPv4 address in {', '.join(node_ips)}") from None
    return Probe(
        src_addr, dst_addr, number, (sport or 40000) if ports else 0, dport or 0, nodes, ctstate, in_iface
    )


@click.command()
@click.option(
    "--rules",
    "rules",
    metavar="DUMP",
    help="iptables-save dump, iptables-restore input or `iptables -S` output.",
)
@click.option(
    "--nft",
    "nft",
    metavar="DUMP",
    help="Instead of --rules: `nft list ruleset` text, `nft -f` input or `nft -j list ruleset` JSON.",
)
@click.option(
    "--manifests",
    "manifests",
    multiple=True,
    metavar="FILE",
    help="Instead of --rules: Services, EndpointSlices, Node, KubeProxyConfiguration (repeat).",
)
@click.option("--kube-proxy-version", "kp_version", default="current", show_default=True, metavar="V")
@click.option("-p", "--proto", type=click.Choice(sorted(PROTO_NUMBERS)), default="tcp", show_default=True)
@click.option("--src", required=True, metavar="IP[:PORT]", help="Source (port 40000 if not given).")
@click.option("--dst", required=True, metavar="IP:PORT", help="Destination.")
@click.option("--node-ip", "node_ips", multiple=True, metavar="IP", help="A node address (repeat).")
@click.option(
    "--ip-addr",
    "ip_addr",
    metavar="FILE",
    help="The node's `ip -j addr` (or `ip addr`) output: its interfaces.",
)
@click.option(
    "--ip-route",
    "ip_route",
    metavar="FILE",
    help="The node's `ip -j route` (or `ip route`) output: its routes.",
)
@click.option(
    "--ipset-save", "ipset_save", metavar="FILE", help="The node's `ipset save` output: set membership."
)
@click.option("--ctstate", type=click.Choice(CT_STATES), default="NEW", show_default=True)
@click.option(
    "--in-iface",
    default=None,
    metavar="IF",
    help="Input interface (default: the default route's, else eth0). Without it, a packet from a node "
    "address leaves the node (OUTPUT).",
)
@click.option("--all-branches", is_flag=True, help="Every random branch, with its probability.")
@click.option("--stateless", is_flag=True, help="kube-proxy's own test-tracer semantics.")
@click.option("--lenient", is_flag=True, help="Accept what kube-proxy's test parser accepts.")
@click.option(
    "--unknown",
    type=click.Choice(["error", "never-match", "always-match"]),
    default="error",
    show_default=True,
    help="What a match or target kplab does not know does when reached.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random draws.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def trace(
    rules: str | None,
    nft: str | None,
    manifests: tuple[str, ...],
    kp_version: str,
    proto: str,
    src: str,
    dst: str,
    node_ips: tuple[str, ...],
    ip_addr: str | None,
    ip_route: str | None,
    ipset_save: str | None,
    ctstate: str,
    in_iface: str | None,
    all_branches: bool,
    stateless: bool,
    lenient: bool,
    unknown: str,
    seed: int,
    output: str,
) -> None:
    """Trace a packet through an iptables ruleset, rule by rule, like `iptables -j TRACE`.

    Stateful by default: the node's hooks from the built-in chains, conntrack in state --ctstate,
    NAT applied. --stateless gives kube-proxy's test-tracer view (nat KUBE-SERVICES, then the
    filter KUBE-* chains; rules needing state never match; every probabilistic branch an outcome).
    With --nft, the base chains of every table by hook and priority (--stateless: kube-proxy's
    nftables tracer, from filter-prerouting-pre-dnat to filter-input).
    """
    if nft is not None:
        if rules is not None or manifests:
            raise InputError("trace: give one of --rules, --nft, --manifests")
        if ipset_save is not None or lenient:
            raise InputError("trace: --ipset-save and --lenient are for iptables dumps (--rules), not --nft")
        nft_probe = make_nft_probe(proto, src, dst, node_ips, ctstate, in_iface)
        report = trace_nft_dump(nft, nft_probe, ip_addr, ip_route, all_branches, stateless, unknown, seed)
        fill_reasons(report)
        if output == "json":
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            click.echo(render_text(report, all_branches or stateless))
        return
    if manifests:
        from kplab.kubeproxy.api import rules_from_manifests
        from kplab.kubeproxy.names import parse_version

        generated, addresses = rules_from_manifests(list(manifests), parse_version(kp_version))
        ruleset, node_ips = generated.ruleset(), node_ips or tuple(addresses)
        manifest_notes = [n for n in generated.notes if "spec.clusterIP" in n or "skipped:" in n]
    else:
        ruleset = load_rules_for_trace(rules=rules, lenient=lenient)
        manifest_notes = []
    probe = make_probe(proto, src, dst, node_ips, ctstate, in_iface)
    ifaces = iproute.parse_addr(iproute.read(ip_addr), ip_addr) if ip_addr else None
    routes = iproute.parse_route(iproute.read(ip_route), ip_route) if ip_route else None
    sets = ipset.parse(iproute.read(ipset_save), ipset_save) if ipset_save else ipset.IpSets()
    warnings: list[str] = []
    if stateless:
        report = trace_stateless_report(ruleset, probe)
        net = node_for_trace(probe.node_ips, ifaces, routes)[0]
    else:
        net, warnings = node_for_trace(probe.node_ips, ifaces, routes)
        probe = replace(probe, net=net, sets=sets)
        warnings += arrival_note(probe, ifaces is not None or routes is not None)
        engine = compile_ruleset(ruleset, unknown=unknown)
        report = trace_stateful(engine, probe, seed=seed, all_branches=all_branches)
    notes = (
        ipvs_warning(ruleset),
        nodeport_warning(ruleset, net, probe.dst, probe.proto, probe.dport, sets),
        set_warning(sets, unknown),
    )
    report.warnings = manifest_notes + warnings + [w for w in notes if w]
    if output == "json":
        click.echo(json.dumps(report.to_json(), allow_nan=False, indent=2))
    else:
        click.echo(render_text(report, all_branches or stateless))


def arrival_note(probe: Probe, node_described: bool) -> list[str]:
    """What was assumed about where a forwarded probe arrives, when the node's interfaces or routes
    were given but --in-iface was not."""
    if not node_described or probe.local_out or probe.in_iface is not None:
        return []
    return [
        f"no --in-iface: the packet is taken to arrive on {arrival_iface(probe.net)} (the default route's)"
    ]


def trace_nft_dump(
    path: str,
    probe: Probe,
    ip_addr: str | None,
    ip_route: str | None,
    all_branches: bool,
    stateless: bool,
    unknown: str,
    seed: int,
) -> TraceReport:
    """`kplab trace --nft`: the node (--ip-addr/--ip-route, IPv4), the dump read (text or JSON),
    compiled and traced; the report says what was assumed about the node."""
    from kplab.netfilter.nft.load import load_nft
    from kplab.netfilter.nft.tracer import trace_nft, trace_nft_stateless

    warnings: list[str] = []
    if probe.family == 4:
        ifaces = iproute.parse_addr(iproute.read(ip_addr), ip_addr) if ip_addr else None
        routes = iproute.parse_route(iproute.read(ip_route), ip_route) if ip_route else None
        net, warnings = node_for_trace(probe.node_ips, ifaces, routes)
        probe = replace(probe, net=net)
        warnings += arrival_note(probe, ip_addr is not None or ip_route is not None)
    elif ip_addr or ip_route:
        raise InputError("trace: --ip-addr and --ip-route describe IPv4 nodes; an IPv6 probe takes --node-ip")
    engine = load_nft(path, unknown=unknown)
    if stateless:
        report = trace_nft_stateless(engine, probe)
    else:
        report = trace_nft(engine, probe, seed=seed, all_branches=all_branches)
    report.warnings = warnings
    return report


def make_nft_probe(
    proto: str, src: str, dst: str, node_ips: tuple[str, ...], ctstate: str, in_iface: str | None
) -> Probe:
    """A probe for IPv4 (`10.0.0.1:80`) or IPv6 (`[fd00::1]:80`, or a bare address) packets."""
    number = PROTO_NUMBERS[proto]
    ports = proto != "icmp"
    src_addr, sport, family = _endpoint("--src", src, port_required=False)
    dst_addr, dport, dst_family = _endpoint("--dst", dst, port_required=ports)
    if dst_family != family:
        raise InputError(f"--src {src} and --dst {dst}: not the same IP family")
    nodes = []
    for text in node_ips:
        try:
            nodes.append(int(ipaddress.ip_address(text)))
        except ValueError:
            raise InputError(f"--node-ip: not an IP address: '{text}'") from None
    return Probe(
        src_addr,
        dst_addr,
        number,
        (sport or 40000) if ports else 0,
        dport or 0,
        tuple(nodes),
        ctstate,
        in_iface,
        family=family,
    )


def _endpoint(option: str, text: str, *, port_required: bool) -> tuple[int, int | None, int]:
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise InputError(f"{option}: not [IPv6]:PORT: '{text}'")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise InputError(f"{option}: bad port in '{text}'")
        port = int(port_text)
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"{option}: not IP[:PORT] or [IPv6]:PORT: '{text}'") from None
    if port is not None and port > 65535:
        raise InputError(f"{option}: bad port in '{text}'")
    if port_required and port is None:
        raise InputError(f"{option}: needs IP:PORT (or [IPv6]:PORT), got '{text}'")
    return int(addr), port, addr.version


def trace_line(entry: TraceEntry) -> str:
    """`nat:KUBE-SVC-X:rule:2  -A KUBE-SVC-X ...  (dump:31)`, as TRACE names the position."""
    source = entry.rule.source if entry.rule is not None else entry.source
    where = f"  ({source})" if source is not None and source.line else ""
    return f"{entry.table}:{entry.chain}:{entry.kind}:{entry.number}  {entry.text}{where}"


def render_text(report: TraceReport, branches: bool) -> str:
    lines = [trace_line(e) for e in report.path]
    lines.append(f"verdict: {report.verdict}")
    lines.append(f"reason: {report.reason or '-'}")
    lines.append(f"dnat: {report.dnat or '-'}")
    lines.append(f"snat: {report.snat or '-'}")
    lines.append(f"masquerade: {'yes' if report.masquerade else 'no'}")
    if branches:
        lines.append(f"outcomes: {len(report.outcomes)}")
        for outcome in report.outcomes:
            what = outcome.dnat or "-"
            lines.append(
                f"  p={outcome.probability:.6f}  dnat={what}  verdict={outcome.verdict or '-'}"
                f"  masquerade={'yes' if outcome.masquerade else 'no'}"
                + (f"  reason: {outcome.reason}" if outcome.reason else "")
            )
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)
