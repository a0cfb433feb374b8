"""The node as the rule engine sees it: its interfaces' addresses and its routes.

Enough for the routing decision (local delivery or forwarding, and the output interface by longest
prefix), for `addrtype` (which addresses are LOCAL) and for MASQUERADE/REDIRECT (the address of
the interface).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kplab.netfilter.state import EngineState, Env, SetLookup
from kplab.packet import parse_cidr


@dataclass(frozen=True, slots=True)
class Route:
    network: int
    mask: int
    dev: str
    via: int | None = None
    kind: str = "unicast"  # or blackhole/unreachable/prohibit/throw: the packet stops here

    @classmethod
    def parse(cls, cidr: str, dev: str, via: int | None = None) -> Route:
        network, mask = parse_cidr(cidr)
        return cls(network, mask, dev, via)


@dataclass(slots=True)
class NodeNet:
    """Interfaces (name -> addresses, primary first) and routes. `lo` owns 127.0.0.1 implicitly."""

    addrs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    forwarding: bool = True  # net.ipv4.ip_forward
    scoped: frozenset[int] = frozenset()  # host/link-scope addresses: local, but never MASQUERADE's
    masks: dict[int, int] = field(default_factory=dict)  # address -> its prefix's mask, where known
    _local: frozenset[int] = frozenset()
    _iface: dict[str, frozenset[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refresh()

    @classmethod
    def simple(cls, node_ips: Iterable[int], iface: str = "eth0") -> NodeNet:
        """One interface holding `node_ips`, and a default route out of it."""
        return cls({iface: tuple(node_ips)}, [Route(0, 0, iface)])

    def refresh(self) -> None:
        """Recompute the address sets after changing `addrs`."""
        self._iface = {name: frozenset(a) for name, a in self.addrs.items()}
        self._local = frozenset(a for addrs in self.addrs.values() for a in addrs)

    @property
    def local_addrs(self) -> frozenset[int]:
        return self._local

    def is_local(self, addr: int) -> bool:
        return addr >> 24 == 127 or addr in self._local

    def primary(self, iface: str | None) -> int | None:
        """The interface's first address (what REDIRECT uses: `nf_nat_redirect_ipv4`, no fallback)."""
        if iface == "lo":
            return 0x7F000001
        addrs = self.addrs.get(iface or "", ())
        return addrs[0] if addrs else None

    def masquerade_source(self, iface: str | None, nexthop: int | None = None) -> int | None:
        """The address MASQUERADE takes leaving `iface` towards `nexthop` (the route's gateway, or the
        destination itself): `inet_select_addr(out, nh, RT_SCOPE_UNIVERSE)`.

        Of the interface's universe-scope addresses (primary first), the first whose prefix holds
        the next hop, else the first. When it has none (the case for `lo`, whose 127.0.0.0/8 is
        host scope, unless a global address was added to it) the first universe-scope address of
        any interface in device order. So host -> ClusterIP -> a local endpoint (out `lo`) is
        SNATed to the node address, never to 127.0.0.1. None when the node has no such address.
        An address whose prefix is not known (`masks`) never matches the next hop.
        """
        first: int | None = None
        for addr in self.addrs.get(iface or "", ()):
            if addr >> 24 == 127 or addr in self.scoped:
                continue
            mask = self.masks.get(addr)
            if nexthop is not None and mask is not None and (addr ^ nexthop) & mask == 0:
                return addr
            if first is None:
                first = addr
        if first is not None:
            return first
        for addrs in self.addrs.values():  # device order: lo first (a global address there wins)
            for addr in addrs:
                if addr >> 24 != 127 and addr not in self.scoped:
                    return addr
        return None

    def route(self, dst: int) -> Route | None:
        """Longest-prefix match over `routes` (`fib_lookup` on a plain routing table)."""
        best: Route | None = None
        for route in self.routes:
            if dst & route.mask == route.network and (best is None or route.mask > best.mask):
                best = route
        return best

    def bind_env(self, env: Env, now_ns: int) -> None:
        """Point a reused `Env` at this node's current addresses and at `now_ns`."""
        env.now_ns = now_ns
        env.local_addrs = self._local
        env.iface_addrs = self._iface

    def env(self, now_ns: int, state: EngineState, sets: SetLookup | None = None,
            chooser: Callable[[int], bool] | None = None) -> Env:  # fmt: skip
        return Env(now_ns, state, self._local, self._iface, sets, chooser)
