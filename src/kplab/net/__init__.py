"""The emulated network: links and their faults (`link`), captures of links (`capture`), the node's
packet path through the rule engine and conntrack (`node`), pods with their TCP stacks (`pod`), the
fabric switch (`fabric`), a scenario built into a cluster (`cluster`) and run (`run`, `summary`)."""

from kplab.net.link import ETH_OVERHEAD_BYTES, Channel, ChannelStats, Link

__all__ = ["ETH_OVERHEAD_BYTES", "Channel", "ChannelStats", "Link"]
