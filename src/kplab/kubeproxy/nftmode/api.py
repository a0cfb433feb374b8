"""The public entry point of nftables mode: one node's kube-proxy tables from loaded objects."""

from __future__ import annotations

from dataclasses import dataclass

from kplab.errors import InputError
from kplab.kubeproxy.api import pick_node
from kplab.kubeproxy.nftmode.context import families
from kplab.kubeproxy.nftmode.names import NftVersion
from kplab.kubeproxy.nftmode.proxier import NftProxier
from kplab.kubeproxy.nftmode.table import Table
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, NodeEnv


@dataclass(slots=True)
class GeneratedNft:
    """kube-proxy's tables for one node (`ip kube-proxy`, then `ip6 kube-proxy` when dual-stack)."""

    version: NftVersion
    tables: list[Table]
    notes: list[str]

    def lines(self) -> list[str]:
        return [line for table in self.tables for line in table.dump()]

    @property
    def text(self) -> str:
        """The tables as `add` commands in knftables' Dump layout: what `nft -f` loads."""
        return "\n".join(self.lines()) + "\n"

    def json(self) -> dict[str, object]:
        """What `nft -j list ruleset` prints once `text` is loaded (elements sorted, no handles)."""
        from kplab.kubeproxy.nftmode.render_json import ruleset_json

        return ruleset_json(self.tables)


def choose_config(cluster: Cluster, config: KubeProxyConfig | None) -> KubeProxyConfig:
    if config is not None:
        return config
    if len(cluster.configs) > 1:
        raise InputError(f"{cluster.configs[1].origin}: a second KubeProxyConfiguration: give one (--config)")
    return cluster.configs[0] if cluster.configs else KubeProxyConfig()


def generate_nft(
    cluster: Cluster,
    *,
    config: KubeProxyConfig | None = None,
    env: NodeEnv | None = None,
    version: NftVersion = NftVersion.CURRENT,
    node_name: str | None = None,
) -> GeneratedNft:
    """The tables `version` of kube-proxy's nftables mode writes after its first (full) sync."""
    config = choose_config(cluster, config)
    env = env or NodeEnv()
    node, name = pick_node(cluster, config, node_name)
    notes = list(cluster.notes)
    if node is None and name and cluster.nodes:
        notes.append(f"Node {name!r} is not among the manifests: its primary IP is taken as loopback")
    tables = []
    for family in families(cluster, config, env, node):
        proxier = NftProxier(version, family, config, env)
        result = proxier.sync(cluster, node, name)
        notes += result.notes
        tables.append(proxier.table)
    return GeneratedNft(version, tables, notes)
