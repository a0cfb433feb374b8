"""kube-proxy's nftables mode: the exact `ip kube-proxy` / `ip6 kube-proxy` tables it writes.

    generated = generate_nft(cluster, config=config, env=env, version=NftVersion.CURRENT)
    generated.text      # the tables as `add ...` lines (knftables' Dump layout): loads with `nft -f`
    generated.json()    # what `nft -j list ruleset` prints once it is loaded

Module map: names (versions, fixed object names, hash recipe); layout (base chains and jumps per
version); context (one family's settings); table (transactions and the table model); setup (the
full-sync preamble, element storages); service (one service port); proxier (syncs over time, stale
chains); api; render_json; canon (comparing listings); kernel (loading into a lab namespace).

FACTS checked for this package (Apache-2.0, kubernetes/kubernetes pkg/proxy/nftables; see
tests/data/kube-proxy-nftables/SOURCE.md):
- proxier.go @ b0f823e6 (the 1.33 layout): setupNFTables, syncProxyRules, nftElementStorage,
  writeServiceToEndpointRules, hashAndTruncate; the base chains at dstnat-10 with
  filter-output-post-dnat at dstnat+10, and its nftablesJumpChains; the masquerade rule
  `ip daddr C tcp dport P <IfNotLocalNFT> jump mark-for-masquerade`; ServiceCIDRs joined with ","
  (OnServiceCIDRsChanged); pkg/proxy/util/localdetector.go for IfLocalNFT/IfNotLocalNFT
  (`ip saddr CIDR`, `iifname NAME`, `iifname PREFIX*`).
- current = the v1.34 test snapshot (proxier_test.go @ 81810de6): *-pre-dnat chains at -110,
  filter chains at 0 (PR #132456), no port in the masquerade rule (PR #131492). Derived, not read:
  with masqueradeAll the rule loses its port too (`ip daddr C jump mark-for-masquerade`).
- A stale per-service chain is flushed and re-stamped by every sync that finds it unused, and
  deleted by the first sync that starts more than 1 s after its stamp (as the loop in b0f823e6 does).
- nftables mode defaults nodePortAddresses to `primary` (the family's primary node IP).
- Which families: the test harness's `ipFamily` when the env file gives one, else IPv4 and, when
  any input holds an IPv6 address, IPv6 as well (a dual-stack kube-proxy runs both proxiers).
- kube-proxy's real first transaction also holds `flush`/`delete` lines (each base chain added and
  deleted once, every chain flushed); `NftProxier.sync` returns it, and the kernel test runs those
  transactions in order. `text` is the resulting table, which is what the fixtures hold.
"""
