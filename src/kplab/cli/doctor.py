"""`kplab doctor`: diagnose a node or a capture for the escaped-NAT reset, and say what fixes it."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from kplab.diagnose import Severity, diagnose
from kplab.diagnose.collect import collect_text
from kplab.diagnose.live import gather
from kplab.diagnose.load import Sources, load
from kplab.diagnose.render import to_console, to_json
from kplab.errors import InputError


@click.group(invoke_without_command=True)
@click.option("--iptables-save", "iptables_save", metavar="FILE|-", help="iptables-save output of the node.")
@click.option(
    "--nft",
    "nft_file",
    metavar="FILE",
    help="`nft list ruleset` or `nft -j list ruleset` output (kube-proxy nftables mode).",
)
@click.option("--sysctl", "sysctl_file", metavar="FILE", help="`sysctl -a` output, or a subset of it.")
@click.option(
    "--conntrack-stats",
    "stats",
    multiple=True,
    metavar="FILE",
    help="`conntrack -S` or /proc/net/stat/nf_conntrack; twice for a before/after pair.",
)
@click.option(
    "--stats-interval",
    "interval",
    type=float,
    metavar="SECONDS",
    help="Seconds between the two --conntrack-stats samples (gives a rate).",
)
@click.option("--uname", "release", metavar="RELEASE", help="The node's kernel release (`uname -r`).")
@click.option(
    "--kube-proxy-config",
    "kp_config",
    metavar="FILE",
    help="The KubeProxyConfiguration (or the kube-proxy ConfigMap).",
)
@click.option("--pcap", "pcaps", multiple=True, metavar="FILE", help="A pcap or pcapng capture (repeatable).")
@click.option("--service-cidr", "service_cidrs", multiple=True, metavar="CIDR", help="Service (VIP) range.")
@click.option("--pod-cidr", "pod_cidrs", multiple=True, metavar="CIDR", help="Pod range.")
@click.option("--live", is_flag=True, help="Read this host instead (read-only: changes nothing).")
@click.option(
    "--live-interval",
    type=float,
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --live: seconds between two counter samples (0: one sample).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["info", "warning", "critical"]),
    default="critical",
    show_default=True,
    help="Exit 1 when a finding is at least this severe.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def doctor(
    ctx: click.Context,
    iptables_save: str | None,
    nft_file: str | None,
    sysctl_file: str | None,
    stats: tuple[str, ...],
    interval: float | None,
    release: str | None,
    kp_config: str | None,
    pcaps: tuple[str, ...],
    service_cidrs: tuple[str, ...],
    pod_cidrs: tuple[str, ...],
    live: bool,
    live_interval: float,
    fail_on: str,
    output: str,
) -> None:
    """Diagnose a node (dumps, sysctls, counters) or captures for the escaped-NAT reset: findings with
    evidence and fixes. Exit 0 healthy, 1 findings at or above --fail-on, 2 bad input."""
    if ctx.invoked_subcommand is not None:
        return
    sources = Sources(
        iptables_save,
        nft_file,
        sysctl_file,
        list(stats),
        interval,
        release,
        kp_config,
        list(pcaps),
        list(service_cidrs),
        list(pod_cidrs),
    )
    given = any((iptables_save, nft_file, sysctl_file, stats, release, kp_config, pcaps))
    if live and given:
        raise InputError("--live reads this host: give either --live or input files, not both")
    if not live and not given:
        raise InputError("nothing to diagnose: give input files (see `kplab doctor collect`) or --live")
    if not 0 <= live_interval <= 3600:  # (also refuses nan)
        raise InputError(f"--live-interval: expected seconds in [0, 3600], got {live_interval}")
    inputs = gather(live_interval) if live else load(sources)
    report = diagnose(inputs)
    if output == "json":
        click.echo(to_json(report), nl=False)
    else:
        to_console(report, Console(width=None if sys.stdout.isatty() else 110))
    sys.exit(report.exit_code(Severity.parse(fail_on)))


@doctor.command()
@click.option(
    "--node", default="NODE", show_default=True, help="The node name for `kubectl debug node/NAME`."
)
def collect(node: str) -> None:
    """Print the read-only commands that gather the doctor's inputs on a node."""
    click.echo(collect_text(node), nl=False)
