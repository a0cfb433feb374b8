"""kplab: a lab for Kubernetes Service networking (kube-proxy, netfilter conntrack and TCP)."""

from kplab import _native

__version__ = "0.1.0"

_native.activate()
