"""The network model: links (and, later, nodes, pods and routing)."""

from kplab.net.link import Channel, ChannelStats, Faults, Link, ip_length

__all__ = ["Channel", "ChannelStats", "Faults", "Link", "ip_length"]
