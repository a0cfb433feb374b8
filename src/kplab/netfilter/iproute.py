"""A real node's interfaces and routes, from what users can paste: `ip -j addr`/`ip addr` and
`ip -j route`/`ip route` output, into the `NodeNet` the trace walks.

Addresses keep the interface order of the file (the kernel's device order, which MASQUERADE's
fallback follows), primaries before secondaries. Routes are the main table: `default`, prefixes,
bare addresses (/32); `blackhole`, `unreachable` and `prohibit` routes stop a packet; of two
routes to one prefix the lower metric wins. Bad input: `file:line: what is wrong`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kplab.errors import located
from kplab.netfilter.node import NodeNet, Route
from kplab.packet import cidr, ip, parse_cidr
from kplab.untrusted import load_json, read_text

_IFNAME = re.compile(r"^[A-Za-z0-9_.:\-+]{1,15}$")
_STOP_TYPES = frozenset({"blackhole", "unreachable", "prohibit", "throw"})
_IGNORED_TYPES = frozenset({"local", "broadcast", "multicast", "anycast", "nat"})
_ROUTE_WORDS = frozenset(
    {"proto", "scope", "metric", "table", "mtu", "advmss", "realms", "expires", "pref", "rtt", "rttvar",
     "cwnd", "initcwnd", "initrwnd", "quickack", "features", "congctl", "weight", "onlink", "linkdown",
     "pervasive", "dead", "notify", "offload", "trap", "rt_offload", "hoplimit", "nexthop", "nhid",
     "ssthresh", "window", "reordering", "fastopen_no_cookie", "src", "via", "dev", "tos", "dsfield",
     "error"}
)  # fmt: skip


@dataclass(slots=True)
class Iface:
    name: str
    addrs: list[int] = field(default_factory=list)
    secondary: list[int] = field(default_factory=list)
    scoped: list[int] = field(default_factory=list)  # host/link scope: never chosen by MASQUERADE
    prefixes: list[tuple[int, int]] = field(default_factory=list)  # connected (network, prefixlen)


@dataclass(slots=True)
class NodeRoutes:
    routes: list[Route] = field(default_factory=list)
    sources: dict[str, list[int]] = field(default_factory=dict)  # dev -> `src` addresses (local)


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _load_json(text: str, file: str) -> list[Any]:
    data = load_json(text, file)
    if not isinstance(data, list):
        raise located(file, 1, "expected a JSON list (the output of `ip -j ...`)")
    return data


def _is_json(text: str) -> bool:
    return text.lstrip().startswith("[")


def parse_addr(text: str, file: str) -> list[Iface]:
    """`ip -j addr` or `ip addr` (also `ip -o addr`) output: interfaces in file order."""
    ifaces = _addr_json(text, file) if _is_json(text) else _addr_text(text, file)
    if not ifaces:
        raise located(file, 1, "no interfaces: expected the output of `ip -j addr` or `ip addr`")
    return ifaces


def _add(iface: Iface, addr: int, plen: int, scope: str, secondary: bool) -> None:
    (iface.secondary if secondary else iface.addrs).append(addr)
    if scope in ("host", "link"):
        iface.scoped.append(addr)
    if plen < 32:
        iface.prefixes.append((addr, plen))


def _addr_json(text: str, file: str) -> list[Iface]:
    out: list[Iface] = []
    for entry in _load_json(text, file):
        if not isinstance(entry, dict) or not isinstance(entry.get("ifname"), str):
            raise located(file, 1, "expected objects with 'ifname' (the output of `ip -j addr`)")
        name = entry["ifname"]
        line = _line_of(text, f'"{name}"')
        if not _IFNAME.match(name):
            raise located(file, line, f"not an interface name: {name[:40]!r}")
        iface = Iface(name)
        infos = entry.get("addr_info", [])
        if not isinstance(infos, list):
            raise located(file, line, f"{name}: addr_info must be a list")
        for info in infos:
            if not isinstance(info, dict) or info.get("family") != "inet":
                continue
            local, plen = info.get("local"), info.get("prefixlen", 32)
            if not isinstance(local, str) or not isinstance(plen, int) or not 0 <= plen <= 32:
                raise located(
                    file, _line_of(text, str(local)), f"{name}: bad inet address {local!r}/{plen!r}"
                )
            try:
                addr = ip(local)
            except ValueError as exc:
                raise located(file, _line_of(text, local), f"{name}: {exc}") from None
            _add(iface, addr, plen, str(info.get("scope", "global")), bool(info.get("secondary", False)))
        out.append(iface)
    return out


_HEAD = re.compile(r"^(\d+):\s+([^:\s]+):\s")
_ONELINE = re.compile(r"^(\d+):\s+(\S+)\s+(inet6?)\s+(\S+)(.*)$")


def _addr_text(text: str, file: str) -> list[Iface]:
    out: list[Iface] = []
    by_name: dict[str, Iface] = {}
    current: Iface | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        one = _ONELINE.match(line)
        head = _HEAD.match(line) if one is None else None
        if one is not None or head is not None:
            name = (one.group(2) if one is not None else head.group(2) if head is not None else "").split(
                "@"
            )[0]
            if not _IFNAME.match(name):
                raise located(file, lineno, f"not an interface name: {name[:40]!r}")
            current = by_name.get(name)
            if current is None:
                current = by_name[name] = Iface(name)
                out.append(current)
            if one is None:
                continue
            line = f"{one.group(3)} {one.group(4)}{one.group(5)}"
        words = line.split()
        if words[0] in ("link/ether", "link/loopback", "link/none", "link/ipip", "link/void", "valid_lft",
                        "inet6", "altname", "link/gre", "link/sit", "link/tunnel6", "vxlan", "bridge",
                        "veth", "dummy", "link/netns", "link-netns", "link-netnsid"):  # fmt: skip
            continue
        if words[0] != "inet":
            if current is None:
                raise located(file, lineno, "expected `ip addr` output ('N: IFNAME: <FLAGS> ...' lines)")
            continue
        if current is None or len(words) < 2:
            raise located(file, lineno, "an inet line outside an interface")
        addr_text, _, plen_text = words[1].partition("/")
        try:
            addr = ip(addr_text)
            plen = int(plen_text) if plen_text else 32
        except ValueError:
            raise located(file, lineno, f"not an IPv4 address/prefix: {words[1][:40]!r}") from None
        if not 0 <= plen <= 32:
            raise located(file, lineno, f"prefix length out of range: {words[1][:40]!r}")
        scope = words[words.index("scope") + 1] if "scope" in words[:-1] else "global"
        _add(current, addr, plen, scope, "secondary" in words)
    return out


def parse_route(text: str, file: str) -> NodeRoutes:
    """`ip -j route` or `ip route` output (the main table)."""
    result = NodeRoutes()
    best: dict[tuple[int, int], tuple[int, Route]] = {}
    entries = _route_json(text, file) if _is_json(text) else _route_text(text, file)
    for lineno, rtype, dst, dev, via, src, metric in entries:
        if rtype in _IGNORED_TYPES:
            continue
        try:
            network, mask = (0, 0) if dst == "default" else parse_cidr(dst)
            gateway = ip(via) if via else None
            source = ip(src) if src else None
        except ValueError as exc:
            raise located(file, lineno, str(exc)) from None
        if rtype in _STOP_TYPES:
            route = Route(network, mask, "", None, rtype)
        elif rtype != "unicast":
            raise located(file, lineno, f"unknown route type {rtype!r}")
        elif not dev:
            raise located(file, lineno, f"route to {dst} has no 'dev'")
        elif not _IFNAME.match(dev):
            raise located(file, lineno, f"not an interface name: {dev[:40]!r}")
        else:
            route = Route(network, mask, dev, gateway)
            if source is not None:
                result.sources.setdefault(dev, [])
                if source not in result.sources[dev]:
                    result.sources[dev].append(source)
        seen = best.get((network, mask))
        if seen is None or metric < seen[0]:
            best[(network, mask)] = (metric, route)
    result.routes = [route for _, route in best.values()]
    if not result.routes:
        raise located(file, 1, "no routes: expected the output of `ip -j route` or `ip route`")
    return result


MAX_METRIC = 0xFFFFFFFF  # a route's priority is a u32 (RTA_PRIORITY)
RouteLine = tuple[int, str, str, str, str, str, int]  # line, type, dst, dev, via, src, metric


def _route_json(text: str, file: str) -> list[RouteLine]:
    out: list[RouteLine] = []
    for entry in _load_json(text, file):
        if not isinstance(entry, dict) or not isinstance(entry.get("dst"), str):
            raise located(file, 1, "expected objects with 'dst' (the output of `ip -j route`)")
        dst = entry["dst"]
        line = _line_of(text, f'"{dst}"')
        hops = entry.get("nexthops")
        first = hops[0] if isinstance(hops, list) and hops and isinstance(hops[0], dict) else {}
        values = [entry.get(k, first.get(k, "")) for k in ("type", "dev", "gateway", "prefsrc", "table")]
        metric = entry.get("metric", 0)
        if (
            not all(isinstance(v, str) for v in values)
            or not isinstance(metric, int)
            or not 0 <= metric <= MAX_METRIC
        ):
            raise located(file, line, f"route to {dst[:40]!r}: type, dev, gateway, prefsrc must be strings, "
                                      f"metric 0 to {MAX_METRIC}")  # fmt: skip
        rtype, dev, via, src, table = (str(v) for v in values)
        if ":" in dst or table not in ("", "main"):
            continue  # IPv6, or another routing table (`ip route show table all`)
        out.append((line, rtype or "unicast", dst, dev, via, src, metric))
    return out


_FLAGS = frozenset({"onlink", "linkdown", "pervasive", "dead", "notify", "offload", "trap", "rt_offload"})


def _options(words: list[str], file: str, lineno: int) -> dict[str, str]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word not in _ROUTE_WORDS:
            raise located(file, lineno, f"unknown word {word[:30]!r} in an `ip route` line")
        if word in _FLAGS:
            i += 1
            continue
        if i + 1 >= len(words):
            raise located(file, lineno, f"{word!r} needs a value")
        opts[word] = words[i + 1]
        i += 2
    return opts


def _route_text(text: str, file: str) -> list[RouteLine]:
    out: list[RouteLine] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words:
            continue
        if raw.startswith((" ", "\t")):  # a multipath route's `nexthop via A dev D weight W`
            if words[0] == "nexthop" and out and not out[-1][3]:
                hop = _options(words[1:], file, lineno)
                line, rtype, dst, _, _, src, metric = out[-1]
                out[-1] = (line, rtype, dst, hop.get("dev", ""), hop.get("via", ""), src, metric)
            continue
        rtype = "unicast"
        if words[0] in _STOP_TYPES or words[0] in _IGNORED_TYPES or words[0] == "unicast":
            rtype, words = words[0], words[1:]
        if not words:
            raise located(file, lineno, "a route type without a destination")
        dst, rest = words[0], words[1:]
        if ":" in dst:
            continue  # IPv6 (`ip route show table all`)
        if dst != "default" and not re.fullmatch(r"[0-9./]+", dst):
            raise located(file, lineno, f"not an `ip route` line: {raw.strip()[:60]!r}")
        opts = _options(rest, file, lineno)
        if opts.get("table", "main") != "main":
            continue
        metric_text = opts.get("metric", "0")
        if (
            not (metric_text.isascii() and metric_text.isdigit() and len(metric_text) <= 10)
            or int(metric_text) > MAX_METRIC
        ):
            raise located(file, lineno, f"metric must be 0 to {MAX_METRIC}, got {metric_text[:20]!r}")
        out.append((lineno, rtype, dst, opts.get("dev", ""), opts.get("via", ""), opts.get("src", ""),
                    int(metric_text)))  # fmt: skip
    return out


def build(ifaces: list[Iface] | None, routes: NodeRoutes | None, node_ips: tuple[int, ...]) -> NodeNet:
    """The node from what is known. Without routes: each address's connected prefix and a default
    route out of the first interface holding a global address. `node_ips` not found in the
    interfaces are added to the default route's interface."""
    addrs: dict[str, list[int]] = {}
    scoped: set[int] = set()
    masks: dict[int, int] = {}
    for iface in ifaces or ():
        addrs[iface.name] = [*iface.addrs, *iface.secondary]
        scoped.update(iface.scoped)
        masks.update((addr, cidr(plen)) for addr, plen in iface.prefixes)
    for dev, sources in (routes.sources if routes is not None else {}).items():
        have = addrs.setdefault(dev, [])
        have += [s for s in sources if s not in have]
    route_list = list(routes.routes) if routes is not None else _connected(ifaces or [])
    default = next((r.dev for r in route_list if r.mask == 0 and r.dev), None)
    if routes is None:
        default = default or next(
            (name for name, a in addrs.items() if name != "lo" and any(x not in scoped for x in a)), "eth0"
        )
        route_list.append(Route(0, 0, default))
    known = {a for a_list in addrs.values() for a in a_list}
    extra = [a for a in node_ips if a not in known]
    if extra:
        have = addrs.setdefault(default or "eth0", [])
        have += extra
    return NodeNet(
        {name: tuple(a) for name, a in addrs.items()}, route_list, scoped=frozenset(scoped), masks=masks
    )


def _connected(ifaces: list[Iface]) -> list[Route]:
    out = []
    for iface in ifaces:
        for addr, plen in iface.prefixes:
            mask = cidr(plen)
            out.append(Route(addr & mask, mask, iface.name))
    return out


def read(path: str) -> str:
    return read_text(path)  # (directories, binary files, NUL bytes: one line)
