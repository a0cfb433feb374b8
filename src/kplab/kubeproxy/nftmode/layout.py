"""The fixed part of kube-proxy's table per version: base chains and the jumps out of them
(`nftablesBaseChains` / `nftablesJumpChains` in pkg/proxy/nftables/proxier.go)."""

from __future__ import annotations

from dataclasses import dataclass

from kplab.kubeproxy.nftmode.names import (
    CLUSTER_IPS_CHECK,
    FIREWALL_CHECK,
    MASQUERADING,
    NODEPORT_ENDPOINTS_CHECK,
    SERVICE_ENDPOINTS_CHECK,
    SERVICES,
    NftVersion,
)


@dataclass(frozen=True, slots=True)
class BaseChain:
    name: str
    type: str  # filter or nat
    hook: str
    priority: int  # as knftables' Dump prints it (dstnat = -100, srcnat = 100, filter = 0)

    @property
    def spec(self) -> str:
        return f"{{ type {self.type} hook {self.hook} priority {self.priority} ; }}"


@dataclass(frozen=True, slots=True)
class Jump:
    target: str
    source: str
    match: str  # "ct state new" or ""


NAT = (
    BaseChain("nat-prerouting", "nat", "prerouting", -100),
    BaseChain("nat-output", "nat", "output", -100),
    BaseChain("nat-postrouting", "nat", "postrouting", 100),
)
NAT_JUMPS = (
    Jump(SERVICES, "nat-output", ""),
    Jump(SERVICES, "nat-prerouting", ""),
    Jump(MASQUERADING, "nat-postrouting", ""),
)
NEW = "ct state new"

# v1.30-v1.33: every filter chain at dstnat-10, the ClusterIP check after DNAT at dstnat+10
BASE_1_33 = (
    BaseChain("filter-prerouting", "filter", "prerouting", -110),
    BaseChain("filter-input", "filter", "input", -110),
    BaseChain("filter-forward", "filter", "forward", -110),
    BaseChain("filter-output", "filter", "output", -110),
    BaseChain("filter-output-post-dnat", "filter", "output", -90),
    *NAT,
)
JUMPS_1_33 = (
    Jump(NODEPORT_ENDPOINTS_CHECK, "filter-input", NEW),
    Jump(SERVICE_ENDPOINTS_CHECK, "filter-input", NEW),
    Jump(SERVICE_ENDPOINTS_CHECK, "filter-forward", NEW),
    Jump(SERVICE_ENDPOINTS_CHECK, "filter-output", NEW),
    Jump(FIREWALL_CHECK, "filter-prerouting", NEW),
    Jump(FIREWALL_CHECK, "filter-output", NEW),
    *NAT_JUMPS,
    Jump(CLUSTER_IPS_CHECK, "filter-forward", NEW),
    Jump(CLUSTER_IPS_CHECK, "filter-output-post-dnat", NEW),
)

# v1.34+ (PR #132456): only the firewall check runs before DNAT; input/forward/output at 0
BASE_CURRENT = (
    BaseChain("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    BaseChain("filter-output-pre-dnat", "filter", "output", -110),
    BaseChain("filter-forward", "filter", "forward", 0),
    BaseChain("filter-input", "filter", "input", 0),
    BaseChain("filter-output", "filter", "output", 0),
    *NAT,
)
JUMPS_CURRENT = (
    Jump(NODEPORT_ENDPOINTS_CHECK, "filter-input", NEW),
    Jump(SERVICE_ENDPOINTS_CHECK, "filter-input", NEW),
    Jump(SERVICE_ENDPOINTS_CHECK, "filter-forward", NEW),
    Jump(SERVICE_ENDPOINTS_CHECK, "filter-output", NEW),
    Jump(FIREWALL_CHECK, "filter-prerouting-pre-dnat", NEW),
    Jump(FIREWALL_CHECK, "filter-output-pre-dnat", NEW),
    *NAT_JUMPS,
    Jump(CLUSTER_IPS_CHECK, "filter-forward", NEW),
    Jump(CLUSTER_IPS_CHECK, "filter-output", NEW),
)


def base_chains(version: NftVersion) -> tuple[BaseChain, ...]:
    return BASE_1_33 if version is NftVersion.V1_33 else BASE_CURRENT


def jumps(version: NftVersion) -> tuple[Jump, ...]:
    return JUMPS_1_33 if version is NftVersion.V1_33 else JUMPS_CURRENT
