"""The public entry points: one node's kube-proxy rules from loaded objects."""

from __future__ import annotations

from dataclasses import dataclass, replace

from kplab.errors import InputError
from kplab.kubeproxy.fullnode import full_node_lines
from kplab.kubeproxy.gen_current import generate_current
from kplab.kubeproxy.gen_legacy import generate_legacy
from kplab.kubeproxy.names import Version
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, Node, NodeEnv, Origin
from kplab.kubeproxy.resolve import node_context, service_ports
from kplab.kubeproxy.savefmt import save_text
from kplab.netfilter.model import Ruleset, Source


@dataclass(slots=True)
class GeneratedRules:
    """kube-proxy's restore input for one node (plus, with `full_node`, what else the node holds)."""

    version: Version
    lines: list[str]  # the restore input, line by line
    origins: list[Origin]  # where each line comes from (its Service's document, or <generated>)
    notes: list[str]
    full_node: bool

    @property
    def restore_text(self) -> str:
        """The iptables-restore input, byte for byte as kube-proxy writes it."""
        return "\n".join(self.lines) + "\n"

    def save_text(self) -> str:
        """What the real `iptables-save` prints once `restore_text` is loaded into an empty namespace."""
        return save_text(self.restore_text)

    def ruleset(self) -> Ruleset:
        """The restore input as the engine's Ruleset; each rule's Source is its Service's manifest
        file and document line, or `<generated>` with its line in `restore_text`."""
        from kplab.netfilter.iptables_save import parse  # the engine (issue 2)

        ruleset = parse(self.restore_text, "<generated>")
        for table in ruleset.tables.values():
            for chain in table.chains.values():
                for rule in chain.rules:
                    origin = (
                        self.origins[rule.source.line - 1]
                        if 0 < rule.source.line <= len(self.origins)
                        else None
                    )
                    if origin is not None and origin.doc:
                        rule.source = Source(origin.file, origin.line)
        return ruleset

    def save_ruleset(self) -> Ruleset:
        """`save_text()` as the engine's Ruleset (what a node's iptables-save would show)."""
        from kplab.netfilter.iptables_save import parse

        return parse(self.save_text(), "<generated iptables-save>")


def pick_node(cluster: Cluster, config: KubeProxyConfig, node_name: str | None) -> tuple[Node | None, str]:
    """The Node kube-proxy runs on: `--node`, else hostnameOverride, else the only Node given."""
    wanted = node_name or config.hostname_override
    if wanted:
        found = [n for n in cluster.nodes if n.name == wanted]
        return (found[0] if found else None), wanted
    if len(cluster.nodes) == 1:
        return cluster.nodes[0], cluster.nodes[0].name
    if cluster.nodes:
        names = ", ".join(n.name for n in cluster.nodes)
        raise InputError(f"{cluster.nodes[0].origin}: several Nodes ({names}): say which one with --node")
    return None, ""


def generate(
    cluster: Cluster,
    *,
    config: KubeProxyConfig | None = None,
    env: NodeEnv | None = None,
    version: Version = Version.CURRENT,
    sysctls: dict[str, int] | None = None,
    node_name: str | None = None,
    full_node: bool = False,
) -> GeneratedRules:
    """The rules `version` of kube-proxy writes on one node for `cluster`.

    `config` defaults to the KubeProxyConfiguration among the manifests (or the defaults), `env` to
    an empty environment; `sysctls` override the environment's (e.g. nf_conntrack_tcp_be_liberal).
    """
    if config is None:
        if len(cluster.configs) > 1:
            raise InputError(
                f"{cluster.configs[1].origin}: a second KubeProxyConfiguration: give one (--config)"
            )
        config = cluster.configs[0] if cluster.configs else KubeProxyConfig()
    env = env or NodeEnv()
    if sysctls:
        env = replace(env, sysctls=tuple({**dict(env.sysctls), **sysctls}.items()))
    node, name = pick_node(cluster, config, node_name)
    notes = list(cluster.notes) + _notes(cluster, version)
    if node is None and name and cluster.nodes:
        notes.append(f"Node {name!r} is not among the manifests: its primary IP is taken as 127.0.0.1")
    ctx = node_context(version, config, env, node, name)
    ports = service_ports(cluster, ctx)
    if version.legacy:
        writer = generate_legacy(ctx, ports)
    else:
        writer, _ = generate_current(ctx, ports)
    lines = full_node_lines(writer, ctx) if full_node else writer.lines()
    return GeneratedRules(version, lines.texts, lines.origins, notes, full_node)


def _notes(cluster: Cluster, version: Version) -> list[str]:
    if version.legacy:
        return []
    sliced = {(s.namespace, s.service_name) for s in cluster.slices}
    return [
        f"{e.origin}: Endpoints {e.namespace}/{e.name} ignored: kube-proxy {version.value} reads slices"
        for e in cluster.endpoints
        if (e.namespace, e.name) not in sliced
    ]


def rules_from_manifests(
    paths: list[str], version: Version = Version.CURRENT, *, full_node: bool = True
) -> tuple[GeneratedRules, list[str]]:
    """Rules for manifests alone (a KubeProxyConfiguration among them is used), and the IPv4
    addresses of the Node they run on (for tracers that need the node's LOCAL addresses)."""
    from kplab.kubeproxy.allocate import allocate_cluster_ips
    from kplab.kubeproxy.load import load_manifests

    cluster = load_manifests(paths)
    allocated = allocate_cluster_ips(cluster)
    generated = generate(cluster, version=version, full_node=full_node)
    generated.notes[:0] = allocated
    config = cluster.configs[0] if cluster.configs else KubeProxyConfig()
    node, _ = pick_node(cluster, config, None)
    addresses = [a for t, a in node.addresses if t != "Hostname" and ":" not in a] if node else []
    return generated, addresses
