"""`kplab rules`: the rules a kube-proxy version writes on one node, from manifests (iptables
mode: its iptables-restore input; nftables mode: its `ip`/`ip6 kube-proxy` tables)."""

from __future__ import annotations

import json

import click

from kplab.errors import InputError
from kplab.kubeproxy import generate, load_config, load_env, load_manifests, parse_version
from kplab.kubeproxy.allocate import DEFAULT_SERVICE_CIDR, allocate_cluster_ips
from kplab.kubeproxy.nftmode.api import choose_config, generate_nft
from kplab.kubeproxy.nftmode.names import parse_nft_version
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, NodeEnv
from kplab.untrusted import shown

IPTABLES_FORMATS = ("restore", "save")
NFT_FORMATS = ("nft", "json")


def parse_sysctl(text: str) -> tuple[str, int]:
    key, sep, value = text.partition("=")
    digits = value.strip().lstrip("-")
    if not sep or not key.strip() or not digits.isdigit() or len(digits) > 19:  # a kernel long at most
        raise InputError(f"--sysctl: expected KEY=INTEGER, got {shown(text)}")
    return key.strip(), int(value)


@click.command()
@click.option(
    "-f",
    "--filename",
    "manifests",
    multiple=True,
    required=True,
    metavar="MANIFESTS",
    help="Services, EndpointSlices (or Endpoints), Nodes: YAML/JSON, multi-document or kind: List.",
)
@click.option("--config", "config_path", metavar="FILE", help="The KubeProxyConfiguration.")
@click.option("--node", "node_name", metavar="NAME", help="The Node kube-proxy runs on.")
@click.option(
    "--env", "env_path", metavar="FILE", help="The node environment (interfaces, nfacct, sysctls...)."
)
@click.option(
    "--kube-proxy-version",
    "version_text",
    default="current",
    show_default=True,
    metavar="V",
    help="iptables mode: 1.14, 1.15 or current; nftables mode: 1.33 or current.",
)
@click.option(
    "--proxy-mode",
    "proxy_mode",
    type=click.Choice(["iptables", "nftables"]),
    default=None,
    help="kube-proxy's mode (default: the KubeProxyConfiguration's `mode`, else iptables).",
)
@click.option(
    "--sysctl",
    "sysctls",
    multiple=True,
    metavar="KEY=VALUE",
    help="A node sysctl, e.g. net.netfilter.nf_conntrack_tcp_be_liberal=1.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*IPTABLES_FORMATS, *NFT_FORMATS]),
    default=None,
    help="iptables mode: restore (default, kube-proxy's iptables-restore input) or save (what "
    "iptables-save prints after); nftables mode: nft (default, what kube-proxy loads with nft -f) "
    "or json (what `nft -j list ruleset` prints after).",
)
@click.option(
    "--full-node", is_flag=True, help="Add the jump rules kube-proxy installs outside its restore input."
)
@click.option(
    "--service-cidr",
    default=DEFAULT_SERVICE_CIDR,
    show_default=True,
    metavar="CIDR",
    help="Where a Service without spec.clusterIP gets one (deterministic from namespace/name).",
)
def rules(
    manifests: tuple[str, ...],
    config_path: str | None,
    node_name: str | None,
    env_path: str | None,
    version_text: str,
    proxy_mode: str | None,
    sysctls: tuple[str, ...],
    fmt: str | None,
    full_node: bool,
    service_cidr: str,
) -> None:
    """Print the rules kube-proxy writes for these objects."""
    cluster = load_manifests(list(manifests))
    for note in allocate_cluster_ips(cluster, service_cidr):
        click.echo(f"kplab: note: {note}", err=True)
    config = None
    if config_path:
        config, notes = load_config(config_path)
        cluster.notes.extend(notes)
    env = load_env(env_path) if env_path else NodeEnv()
    mode = proxy_mode or choose_config(cluster, config).mode
    if mode == "nftables":
        _nftables(cluster, config, env, node_name, version_text, fmt or "nft", full_node)
        return
    if fmt in NFT_FORMATS:
        raise InputError(f"--format {fmt}: nftables mode only (--proxy-mode nftables)")
    version = parse_version(version_text)
    generated = generate(
        cluster,
        config=config,
        env=env,
        version=version,
        sysctls=dict(parse_sysctl(s) for s in sysctls),
        node_name=node_name,
        full_node=full_node,
    )
    for note in generated.notes:
        click.echo(f"kplab: note: {note}", err=True)
    click.echo(generated.save_text() if fmt == "save" else generated.restore_text, nl=False)


def _nftables(
    cluster: Cluster,
    config: KubeProxyConfig | None,
    env: NodeEnv,
    node_name: str | None,
    version_text: str,
    fmt: str,
    full_node: bool,
) -> None:
    if fmt in IPTABLES_FORMATS:
        raise InputError(f"--format {fmt}: iptables mode only (nftables mode writes nft or json)")
    if full_node:
        raise InputError("--full-node: iptables mode only (nftables mode touches no table but its own)")
    version = parse_nft_version(version_text)
    generated = generate_nft(cluster, config=config, env=env, version=version, node_name=node_name)
    for note in generated.notes:
        click.echo(f"kplab: note: {note}", err=True)
    if fmt == "json":
        click.echo(json.dumps(generated.json()))
    else:
        click.echo(generated.text, nl=False)
