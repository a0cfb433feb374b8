"""kplab: a lab for Kubernetes Service networking (kube-proxy, netfilter conntrack and TCP)."""

__version__ = "0.1.0"
