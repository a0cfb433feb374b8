"""Rules a node's operator adds of their own (not kube-proxy's).

kube-proxy's nftables mode writes no `ct state invalid` drop (PR #122663 removed it in v1.30) and
touches no table but its own; an operator who wants the iptables-mode mitigation writes it in a
table of their own, on the forward path (pod to pod through the node) and on output (the node's
own sockets). `DROP_INVALID_TABLE` is that table: the `drop_invalid` variant of nftables mode.
"""

from __future__ import annotations

from typing import Final

DROP_INVALID_TABLE_NAME: Final = "operator"
DROP_INVALID_TABLE: Final = """\
table ip operator {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state invalid drop
	}
	chain output {
		type filter hook output priority filter; policy accept;
		ct state invalid drop
	}
}
"""
