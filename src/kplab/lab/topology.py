"""A scenario's cluster in Linux network namespaces, built as the emulator's `kplab.net.cluster` builds it.

- one namespace per node and per pod, and one for the fabric (a Linux bridge, `br0`);
- pod <-> node: a veth pair (`eth0` in the pod, `veth-<pod>` on the node); the pod has its address
  as /32 and a default route via a link-local gateway (169.254.1.1, Calico style), the node a /32
  route to each of its pods, with static neighbour entries so no ARP ever races a test;
- node <-> fabric: a veth pair (`eth0` on the node, `p<i>` on the bridge); each node has its
  address as /32, a route to every other node and its pod CIDR, and a default route via the fabric;
- per node: `ip_forward=1`, `rp_filter=0`, the scenario's `net.netfilter.*` sysctls set inside the
  node's namespace, and the node's rules (`kplab rules --full-node` plus the CNI masquerade rule,
  `kplab.net.cluster.node_ruleset`) loaded with the real `iptables-restore`; in nftables mode the
  CNI rule alone with `iptables-restore` and kube-proxy's tables (`kplab rules --proxy-mode
  nftables`, with the operator's drop table in the drop_invalid variant) with the real `nft -f`;
- links shaped with the qdiscs this kernel has (`kplab.lab.shaping`), offloads off.
Nothing is done in the host's namespace: every command runs through `ip -n` / `ip netns exec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kplab.kubeproxy import Cluster as KubeObjects
from kplab.kubeproxy.nftmode.names import TABLE as KUBE_PROXY_TABLE
from kplab.lab import kpnft as nft
from kplab.lab.netns import Lab, Netns
from kplab.lab.shaping import Shaper
from kplab.net.cluster import cni_ruleset, node_ruleset
from kplab.netfilter.iptables_save import render
from kplab.scenario.manifests import cluster_objects, node_nft_text
from kplab.scenario.operator import DROP_INVALID_TABLE_NAME
from kplab.scenario.schema import NodeSpec, Scenario

GATEWAY = "169.254.1.1"
SYSCTL_PREFIX = "net.netfilter."
GLOBAL_ONLY = {"net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"}


@dataclass(slots=True)
class LabCluster:
    """The namespaces of one scenario's cluster and what was (or could not be) applied."""

    scenario: Scenario
    lab: Lab
    fabric: Netns
    nodes: dict[str, Netns] = field(default_factory=dict)
    pods: dict[str, Netns] = field(default_factory=dict)
    pod_if: dict[str, str] = field(default_factory=dict)  # pod name -> its veth's name on the node
    notes: list[str] = field(default_factory=list)
    shaper: Shaper = field(default_factory=lambda: Shaper(tbf=False, netem=False))

    def fabric_port(self, node: str) -> str:
        """The bridge port (in the fabric namespace) that leads to `node`."""
        return f"p{[n.name for n in self.scenario.nodes].index(node)}"

    def node_of(self, pod: str) -> Netns:
        return self.nodes[self.scenario_pod(pod).node]

    def scenario_pod(self, pod: str) -> Any:
        return next(p for p in self.scenario.pods if p.name == pod)

    def state(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "source": self.scenario.source,
            "prefix": self.lab.prefix,
            "fabric": self.fabric.name,
            "nodes": {k: v.name for k, v in self.nodes.items()},
            "pods": {k: v.name for k, v in self.pods.items()},
            "pod_if": dict(self.pod_if),
            "notes": list(self.notes),
        }


def mac(ns: Netns, ifname: str) -> str:
    return ns.read(f"/sys/class/net/{ifname}/address").strip()


def batch(ns: Netns, lines: list[str]) -> None:
    """Several `ip` commands in one process (`ip -batch`), inside `ns`."""
    if lines:
        ns.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n")


def set_sysctls(ns: Netns, values: dict[str, int | str]) -> None:
    """Write per-netns sysctls inside `ns` in one shell (never the host's)."""
    script = "; ".join(f"echo {v} > /proc/sys/{k.replace('.', '/')}" for k, v in values.items())
    ns.run(["sh", "-ec", script])


def pod_ifname(pod: str, index: int) -> str:
    name = f"veth-{pod}"
    return name if len(name) <= 15 else f"veth-p{index}"


def build(scenario: Scenario, lab: Lab) -> LabCluster:
    """Create every namespace, link, address, route, sysctl and rule of `scenario` in `lab`."""
    fabric = lab.netns("fabric")
    cluster = LabCluster(scenario, lab, fabric)
    # The fabric namespace holds no rules, so bridged frames meet no iptables or conntrack there
    # (br_netfilter's sysctls are left alone: on kernels where they are global they are the host's).
    batch(fabric, ["link add br0 type bridge", "link set br0 up"])
    shaper = cluster.shaper = Shaper.probe(fabric)
    cluster.notes.extend(shaper.notes(scenario))
    for i, spec in enumerate(scenario.nodes):
        node = cluster.nodes[spec.name] = lab.netns(f"n-{spec.name}")
        lab.veth(node, "eth0", fabric, f"p{i}")
        batch(fabric, [f"link set p{i} master br0"])
        shaper.apply(node, "eth0", scenario.fabric_link)
        shaper.apply(fabric, f"p{i}", scenario.fabric_link)
    for spec in scenario.nodes:
        _node_addresses(cluster, spec)
    for i, pspec in enumerate(scenario.pods):
        pod = cluster.pods[pspec.name] = lab.netns(f"p-{pspec.name}")
        node = cluster.nodes[pspec.node]
        ifname = cluster.pod_if[pspec.name] = pod_ifname(pspec.name, i)
        lab.veth(pod, "eth0", node, ifname)
        node_mac, pod_mac = mac(node, ifname), mac(pod, "eth0")
        batch(pod, [f"addr add {pspec.ip}/32 dev eth0", f"route add {GATEWAY} dev eth0 scope link",
                    f"route add default via {GATEWAY} dev eth0",
                    f"neigh replace {GATEWAY} lladdr {node_mac} dev eth0 nud permanent"])  # fmt: skip
        batch(node, [f"route add {pspec.ip}/32 dev {ifname}",
                     f"neigh replace {pspec.ip} lladdr {pod_mac} dev {ifname} nud permanent"])  # fmt: skip
        set_sysctls(pod, {"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.eth0.rp_filter": 0})
        shaper.apply(pod, "eth0", scenario.pod_link)
        shaper.apply(node, ifname, scenario.pod_link)
    if scenario.externals:
        cluster.notes.append("external hosts are not built in the lab (none of the lab's scenarios has any)")
    objects = cluster_objects(scenario)
    for spec in scenario.nodes:
        _node_settings(cluster, spec)
        load_node_rules(cluster.nodes[spec.name], scenario, spec, objects)
    return cluster


def _node_addresses(cluster: LabCluster, spec: NodeSpec) -> None:
    node = cluster.nodes[spec.name]
    lines = [f"addr add {spec.ip}/32 dev eth0"]
    for other in cluster.scenario.nodes:
        if other.name == spec.name:
            continue
        other_mac = mac(cluster.nodes[other.name], "eth0")
        lines += [f"route add {other.ip}/32 dev eth0",
                  f"route add {other.pod_cidr} via {other.ip} dev eth0 onlink",
                  f"neigh replace {other.ip} lladdr {other_mac} dev eth0 nud permanent"]  # fmt: skip
    lines.append("route add default dev eth0")
    batch(node, lines)


def node_sysctls(scenario: Scenario, spec: NodeSpec) -> tuple[dict[str, int | str], list[str]]:
    """The node namespace's sysctls (forwarding, no reverse-path filter, the scenario's conntrack
    knobs) and notes for those a child namespace cannot set."""
    values: dict[str, int | str] = {
        "net.ipv4.ip_forward": 1,
        "net.ipv4.conf.all.rp_filter": 0,
        "net.ipv4.conf.default.rp_filter": 0,
        "net.netfilter.nf_conntrack_acct": 1,
    }
    notes = []
    for key, value in scenario.node_sysctls(spec).items():
        if key in GLOBAL_ONLY:
            notes.append(f"{spec.name}: {key} is global (read-only in a child namespace): not set")
        else:
            values[key] = value
    return values, notes


def _node_settings(cluster: LabCluster, spec: NodeSpec) -> None:
    values, notes = node_sysctls(cluster.scenario, spec)
    set_sysctls(cluster.nodes[spec.name], values)
    cluster.notes.extend(notes)


def load_rules(node: Netns, restore_text: str) -> None:
    """Replace the node's tables with `restore_text` through the real `iptables-restore`."""
    node.run(["iptables-restore"], input=restore_text)


def load_node_rules(node: Netns, scenario: Scenario, spec: NodeSpec, objects: KubeObjects) -> None:
    """The node's rules in the scenario's kube-proxy mode, replacing what it held."""
    if scenario.kube_proxy_mode != "nftables":
        load_rules(node, render(node_ruleset(scenario, spec, objects), counters=False))
        return
    load_rules(node, render(cni_ruleset(scenario.cluster_cidr), counters=False))
    # add-then-delete removes a table whether or not it is there, in the batch that loads the new ones
    stale = "".join(
        f"add table ip {name}\ndelete table ip {name}\n"
        for name in (KUBE_PROXY_TABLE, DROP_INVALID_TABLE_NAME)
    )
    nft.load(node, stale + node_nft_text(scenario, spec, objects))
