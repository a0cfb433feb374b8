"""The netfilter engine: iptables rulesets parsed, rendered and evaluated like a Linux node."""
