"""The real-kernel lab: Linux network namespaces with the real iptables, conntrack and TCP."""
