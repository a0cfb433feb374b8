"""`kplab rules`: the iptables rules a kube-proxy version writes on one node, from manifests."""

from __future__ import annotations

import click

from kplab.errors import InputError
from kplab.kubeproxy import generate, load_config, load_env, load_manifests, parse_version
from kplab.kubeproxy.allocate import DEFAULT_SERVICE_CIDR, allocate_cluster_ips
from kplab.kubeproxy.objects import NodeEnv
from kplab.untrusted import shown


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
    help="1.14, 1.15 or current.",
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
    type=click.Choice(["restore", "save"]),
    default="restore",
    show_default=True,
    help="restore: kube-proxy's iptables-restore input; save: what iptables-save prints after.",
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
    sysctls: tuple[str, ...],
    fmt: str,
    full_node: bool,
    service_cidr: str,
) -> None:
    """Print the iptables rules kube-proxy writes for these objects."""
    version = parse_version(version_text)
    cluster = load_manifests(list(manifests))
    for note in allocate_cluster_ips(cluster, service_cidr):
        click.echo(f"kplab: note: {note}", err=True)
    config = None
    if config_path:
        config, notes = load_config(config_path)
        cluster.notes.extend(notes)
    env = load_env(env_path) if env_path else NodeEnv()
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
