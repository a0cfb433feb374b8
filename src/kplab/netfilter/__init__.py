"""The netfilter engines: iptables rulesets and nftables tables (`nft`) parsed, rendered and
evaluated like a Linux node, with connection tracking (`conntrack`) behind the one hook walker."""
