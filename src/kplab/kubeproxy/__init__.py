"""kube-proxy's exact rules from Kubernetes objects: iptables mode (IPv4, this package) and
nftables mode (`nftmode`: its `kube-proxy` tables for both families, as `nft -f` text or JSON).

    cluster = load_manifests(["svc.yaml", "slices.yaml", "node.yaml"])
    config, _ = load_config("kube-proxy.yaml")       # or the KubeProxyConfiguration in the manifests
    env = load_env("node-env.yaml")                  # interfaces, nfacct, random-fully, sysctls
    rules = generate(cluster, config=config, env=env, version=Version.V1_15,
                     sysctls={"net.netfilter.nf_conntrack_tcp_be_liberal": 1}, full_node=True)
    rules.restore_text      # kube-proxy's iptables-restore input, byte for byte
    rules.save_text()       # what the real iptables-save prints once it is loaded
    rules.ruleset()         # the engine's Ruleset (rules keep their manifest file:line)

Module map: objects (plain data) <- docs/load (YAML/JSON, errors `file:doc N: ...`); names (versions,
hash recipe); endpoints/resolve (endpoint maps, CategorizeEndpoints, the node's settings);
gen_current / gen_legacy (one function per chain family); fullnode (jump rules outside the restore
input); savefmt/savematch (iptables-save canonicalisation); canon (upstream's sort and checks);
sync (repeated syncs, partial restores); nftmode (the nftables proxier: layout, setup, per-Service
chains, maps and sets, syncs, rendering).

FACTS checked for this package (sources read with the search tools; Apache-2.0, kubernetes/kubernetes):
- current layout: pkg/proxy/iptables/proxier.go at ~v1.33 (NewProxier, syncProxyRules,
  writeServiceToEndpointRules, iptablesJumpChains), pkg/proxy/topology.go (CategorizeEndpoints),
  pkg/proxy/serviceport.go (newBaseServiceInfo), pkg/proxy/endpointslicecache.go (endpoints sorted by
  "ip:port", a terminating duplicate never replaces a live one, ready defaults to true).
- large-cluster mode starts when the total endpoint count is *greater than* 1000
  (`totalEndpoints > largeClusterEndpointsThreshold`), not at 1000 as the notes say.
- v1.15: the vendored v1.15.3 proxier.go in ranjan008/kubeedge@56c37d5f. Verified: masquerade mark
  `%#08x/%#08x`, `--set-xmark` and a mark-matching MASQUERADE; cluster-IP masquerade in
  KUBE-SERVICES written `! -s CIDR` as one word; `/32` via ToCIDR; externalIPs as MARK-MASQ +
  physdev/addrtype pair; KUBE-FW per ingress IP ending in KUBE-MARK-DROP; KUBE-XLB with "Balancing
  rule N" comments; no comment on SVC->SEP/SEP rules; `%0.5f`; the INVALID drop; KUBE-FORWARD
  conntrack rules only with clusterCIDR; no health-check-port rule; jump chains including
  INPUT -> KUBE-SERVICES; endpoints from core/v1 Endpoints in object order (endpoints.go);
  ServicePortName `"%s:%s"` (colon kept for unnamed ports).
- v1.14 = v1.15 without the INVALID rule: PR #74840's only hunk adds those lines (read in the PR
  thread, merged March 2019 after the v1.14 freeze; the blog says "v1.15+"); v1.14's own
  proxier.go was not re-read.
- kubelet's KUBE-MARK-DROP (`-j MARK --set-xmark 0x00008000/0x00008000`) and KUBE-FIREWALL rules
  (comment "kubernetes firewall for dropping marked packets", prepended OUTPUT then INPUT jumps;
  `getIPTablesMark` = `%#08x/%#08x`): read in kubelet_network_linux.go `syncNetworkUtil` of that era.
- iptables-save format: measured on this machine (iptables 1.8.9 nf_tables), see savefmt.py. The
  notes were wrong that comments are always quoted (a bare word stays bare) and did not say that
  `--xor-mark M` prints `--set-xmark M/0x0` or that `--nfacct-name` is followed by two spaces.
- nfacct: a rule with `-m nfacct` loads only if the counter exists in the namespace (ENOENT
  otherwise); `kernel.create_nfacct` creates it over nfnetlink.
- Choices where kube-proxy itself is not deterministic: service ports are written sorted by
  (service port name, protocol) instead of Go map order; union of cluster and local endpoints keeps
  cluster order. With v1.14/v1.15 and no Endpoints object, the service's EndpointSlices stand in.
"""

from kplab.kubeproxy.api import GeneratedRules, generate
from kplab.kubeproxy.load import load_config, load_env, load_manifest_text, load_manifests
from kplab.kubeproxy.names import Version, parse_version
from kplab.kubeproxy.objects import Cluster, KubeProxyConfig, NodeEnv

__all__ = [
    "Cluster",
    "GeneratedRules",
    "KubeProxyConfig",
    "NodeEnv",
    "Version",
    "generate",
    "load_config",
    "load_env",
    "load_manifest_text",
    "load_manifests",
    "parse_version",
]
