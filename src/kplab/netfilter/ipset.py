"""ipset membership from `ipset save` output, for `-m set --match-set NAME DIRS` in a trace.

`parse(text, file)` reads `create NAME TYPE [options]` and `add NAME ELEMENT [options]` lines (the
types kube-proxy's IPVS mode, Calico and Weave use: hash:ip, hash:net, hash:ip,port,
hash:ip,port,ip, hash:ip,port,net, hash:net,port, hash:net,iface, bitmap:port, bitmap:ip,
list:set). `IpSets.lookup` is a `state.SetLookup`: True/False for a set it knows, None for a set
it has no membership for (the caller's `--unknown` policy decides) and it remembers those names
for the trace's warnings. Each dimension of a set is compared with the packet's source or
destination as the match's directions say (`dst,dst` = destination address, destination port).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.errors import located
from kplab.packet import PROTO_NUMBERS, Packet, ip, parse_cidr

_DIMS = frozenset({"ip", "net", "port", "iface", "mac", "mark", "set"})
_KNOWN_METHODS = frozenset({"hash", "bitmap", "list"})
Element = tuple[tuple[int, int, int], ...]  # per dimension: (low, high, proto) ranges


@dataclass(slots=True)
class IpSet:
    name: str
    kind: str  # e.g. "hash:ip,port"
    dims: tuple[str, ...]
    line: int
    members: list[Element] = field(default_factory=list)
    excluded: list[Element] = field(default_factory=list)  # `nomatch` entries (hash:net)
    children: list[str] = field(default_factory=list)  # list:set


@dataclass(slots=True)
class IpSets:
    file: str = ""
    sets: dict[str, IpSet] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # asked for, but no membership known
    used: set[str] = field(default_factory=set)

    def lookup(self, name: str, pkt: Packet, dirs: tuple[str, ...]) -> bool | None:
        found = self.sets.get(name)
        if found is None or any(d in ("iface", "mac", "mark") for d in found.dims):
            self.missing.add(name)
            return None
        self.used.add(name)
        return self._member(found, pkt, dirs, 0)

    def has_port(self, name: str, proto: int, port: int) -> bool:
        """Whether a port set (kube-proxy IPVS mode's KUBE-NODE-PORT-TCP...) holds `port`."""
        found = self.sets.get(name)
        if found is None or found.dims != ("port",):
            return False
        return any(_contains(e, [(port, proto)]) for e in found.members)

    def _member(self, s: IpSet, pkt: Packet, dirs: tuple[str, ...], depth: int) -> bool | None:
        if s.dims == ("set",):
            if depth > 8:
                return False
            for child in s.children:
                inner = self.sets.get(child)
                if inner is None:
                    self.missing.add(child)
                    return None
                if self._member(inner, pkt, dirs, depth + 1):
                    return True
            return False
        key = _key(s.dims, pkt, dirs)
        if any(_contains(e, key) for e in s.excluded):
            return False
        return any(_contains(e, key) for e in s.members)


def _key(dims: tuple[str, ...], pkt: Packet, dirs: tuple[str, ...]) -> list[tuple[int, int]]:
    out = []
    for i, dim in enumerate(dims):
        src = (dirs[i] if i < len(dirs) else dirs[-1]) == "src"
        if dim in ("ip", "net"):
            out.append((pkt.src if src else pkt.dst, 0))
        else:
            out.append((pkt.sport if src else pkt.dport, pkt.proto))
    return out


def _contains(element: Element, key: list[tuple[int, int]]) -> bool:
    for (low, high, proto), (value, pkt_proto) in zip(element, key, strict=False):
        if not low <= value <= high or (proto and proto != pkt_proto):
            return False
    return True


def _ip_range(text: str) -> tuple[int, int, int]:
    if "-" in text:
        first, _, last = text.partition("-")
        low, high = ip(first), ip(last)
        if low > high:
            raise ValueError(f"empty range {text!r}")
        return low, high, 0
    network, mask = parse_cidr(text)
    return network, network | (~mask & 0xFFFFFFFF), 0


def _port_range(text: str, kind: str) -> tuple[int, int, int]:
    proto_name, sep, ports = text.rpartition(":")
    proto = PROTO_NUMBERS.get(proto_name.lower()) if sep else PROTO_NUMBERS["tcp"]
    if proto is None:
        raise ValueError(f"unknown protocol {proto_name!r}")
    if kind.startswith("bitmap"):
        proto = 0  # bitmap:port holds port numbers of any protocol
    first, _, last = ports.partition("-")
    if not _port_digits(first) or (last and not _port_digits(last)):
        raise ValueError(f"not a port: {text!r}")
    low, high = int(first), int(last or first)
    if not 0 <= low <= high <= 65535:
        raise ValueError(f"port out of range: {text!r}")
    return low, high, proto


def _port_digits(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5


def parse(text: str, file: str) -> IpSets:
    """`ipset save` (or `ipset list -o save`) output. Bad input: `file:line: ...`."""
    result = IpSets(file)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] not in ("create", "add") or len(words) < 3:
            raise located(
                file, lineno, "expected `ipset save` lines: 'create NAME TYPE ...' or 'add NAME ELEMENT'"
            )
        name = words[1]
        if len(name) > 31:
            raise located(file, lineno, f"set name longer than 31 characters: {name[:40]!r}")
        if words[0] == "create":
            result.sets[name] = _create(name, words[2], file, lineno)
            continue
        found = result.sets.get(name)
        if found is None:
            raise located(file, lineno, f"'add' to set {name!r} before its 'create'")
        _add(found, words[2], words[3:], file, lineno)
    return result


def _create(name: str, kind: str, file: str, lineno: int) -> IpSet:
    method, _, dims_text = kind.partition(":")
    dims = tuple(dims_text.split(","))
    if method not in _KNOWN_METHODS or not dims_text or not set(dims) <= _DIMS:
        raise located(file, lineno, f"unknown set type {kind[:40]!r}")
    return IpSet(name, kind, dims, lineno)


def _add(s: IpSet, element: str, options: list[str], file: str, lineno: int) -> None:
    if s.dims == ("set",):
        s.children.append(element)
        return
    parts = element.split(",")
    if len(parts) != len(s.dims):
        raise located(
            file, lineno, f"{s.name} ({s.kind}): element {element[:60]!r} needs {len(s.dims)} parts"
        )
    ranges = []
    try:
        for dim, part in zip(s.dims, parts, strict=True):
            if dim in ("ip", "net"):
                ranges.append(_ip_range(part))
            elif dim == "port":
                ranges.append(_port_range(part, s.kind))
            else:
                ranges.append((0, 0, 0))  # iface/mac/mark: lookups say "unknown"
    except ValueError as exc:
        raise located(file, lineno, f"{s.name}: {exc}") from None
    comment_at = options.index("comment") if "comment" in options else len(options)
    (s.excluded if "nomatch" in options[:comment_at] else s.members).append(tuple(ranges))
