"""The network model: links (and, later, nodes, pods and routing)."""

from kplab.net.link import ETH_OVERHEAD_BYTES, Channel, ChannelStats, Link

__all__ = ["ETH_OVERHEAD_BYTES", "Channel", "ChannelStats", "Link"]
