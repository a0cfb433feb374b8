"""What the TCP tracker decides about one packet on an existing entry, defined once.

`tcp_window.tcp_in_window` answers ACCEPT, IGNORE or INVALID; `tcp.tcp_packet` adds the outcomes
that change the entry itself (REPEAT, KILLED, UNREFRESHED); `table.Conntrack` acts on all six.
In the kernel these are `nf_conntrack_tcp_packet`'s return values (NF_ACCEPT, -NF_ACCEPT for
INVALID, -NF_REPEAT) and `tcp_in_window`'s `NFCT_TCP_ACCEPT/IGNORE/INVALID`, folded into one set.
Plain ints (Final) so compiled code compares them without an enum.
"""

from __future__ import annotations

from typing import Final

ACCEPT: Final = 0  # state and window updated, the entry refreshed
IGNORE: Final = 1  # the packet keeps its entry (and its NAT) but updates nothing
INVALID: Final = 2  # the packet leaves without its entry: no NAT, `--ctstate INVALID`
REPEAT: Final = 3  # -NF_REPEAT: the entry was killed, look the packet up again (reopen)
KILLED: Final = 4  # accepted, then the entry was deleted at once (a RST before any reply)
UNREFRESHED: Final = 5  # accepted, but neither timeout nor packet counters refreshed (SYN again in SYN_SENT)
