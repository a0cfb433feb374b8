"""NAT bindings (`nf_nat_setup_info` / `get_unique_tuple`) and packet rewriting (`nf_nat_packet`).

A binding rewrites the entry's reply tuple: after DNAT to 10.0.1.2:80 replies are expected from
10.0.1.2:80, and `apply_nat` rewrites every later packet of the connection in both directions.
Source NAT keeps the original port when the resulting tuple is free, else searches the port
range from an offset drawn from the injected RNG (`--random`/`--random-fully` always do).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Final

from kplab.netfilter.conntrack.entry import (
    IPS_DST_NAT,
    IPS_DST_NAT_DONE,
    IPS_SRC_NAT,
    IPS_SRC_NAT_DONE,
    Entry,
    invert_key,
    pack,
    unpack,
)
from kplab.netfilter.ctview import FiveTuple, Nat
from kplab.packet import ICMP, Packet

DST_HOOKS: Final = frozenset({"PREROUTING", "OUTPUT"})  # destination NAT is applied here
SRC_HOOKS: Final = frozenset({"POSTROUTING", "INPUT"})  # source NAT is applied here
MAX_ATTEMPTS: Final = 128


def is_dst_hook(hook: str) -> bool:
    if hook in DST_HOOKS:
        return True
    if hook in SRC_HOOKS:
        return False
    raise ValueError(f"no NAT at hook {hook}")


def _taken(table: Mapping[int, Entry], entry: Entry, target: FiveTuple) -> bool:
    """`nf_nat_used_tuple`: does another entry already use the reply of this tuple?"""
    reply = pack(target.dst, target.src, target.proto, target.dport, target.sport)
    other = table.get(reply)
    return other is not None and other is not entry


def _default_port_range(port: int) -> tuple[int, int]:
    """Source ports stay in their class: <512, 512-1023 (from 600), >=1024."""
    if port < 512:
        return 1, 511
    if port < 1024:
        return 600, 1023
    return 1024, 65535


def _with_manip(t: FiveTuple, dst: bool, addr: int, port: int) -> FiveTuple:
    return t._replace(dst=addr, dport=port) if dst else t._replace(src=addr, sport=port)


def _pick_addr(nat: Nat, t: FiveTuple, fallback: int) -> int:
    """`find_best_ips_proto`: one address of the range, stable for a (src, dst) pair."""
    low = nat.addr_min if nat.addr_min is not None else fallback
    high = nat.addr_max if nat.addr_max is not None else low
    if high <= low:
        return low
    spread = t.src if nat.persistent else t.src ^ t.dst
    return low + spread % (high - low + 1)


def unique_tuple(
    table: Mapping[int, Entry], entry: Entry, nat: Nat, dst: bool, out_addr: int | None, rng: random.Random
) -> FiveTuple:
    """`get_unique_tuple`: the orig-direction tuple after this manip, not clashing with another entry."""
    current = unpack(invert_key(entry.reply_key))
    randomize = nat.random or nat.random_fully
    fallback = out_addr if out_addr is not None else (current.dst if dst else current.src)
    addr = _pick_addr(nat, current, fallback)
    port = current.dport if dst else current.sport
    candidate = _with_manip(current, dst, addr, port)
    ports_given = nat.port_min is not None
    if current.proto == ICMP:
        return candidate
    if not randomize:
        in_range = not ports_given or (nat.port_min or 0) <= port <= (nat.port_max or nat.port_min or 0)
        single = ports_given and nat.port_min == (nat.port_max or nat.port_min)
        if in_range and (single or not _taken(table, entry, candidate)):
            return candidate
        if dst and not ports_given:
            return candidate
    low, high = (
        (nat.port_min or 0, nat.port_max or nat.port_min or 0) if ports_given else _default_port_range(port)
    )
    return _search_ports(table, entry, candidate, dst, low, high, rng, randomize or not dst)


def _search_ports(
    table: Mapping[int, Entry],
    entry: Entry,
    candidate: FiveTuple,
    dst: bool,
    low: int,
    high: int,
    rng: random.Random,
    random_offset: bool,
) -> FiveTuple:
    """`nf_nat_l4proto_unique_tuple`: rounds of up to 128 tries, halving, from random offsets."""
    size = high - low + 1
    attempts = min(size, MAX_ATTEMPTS)
    offset = rng.randrange(65536) if random_offset else 0
    addr = candidate.dst if dst else candidate.src
    while True:
        for i in range(attempts):
            trial = _with_manip(candidate, dst, addr, low + (offset + i) % size)
            if not _taken(table, entry, trial):
                return trial
        attempts //= 2
        if attempts < 16 or size <= MAX_ATTEMPTS:
            return trial  # give up: the clash surfaces at confirm (insert_failed)
        offset = rng.randrange(65536)


def bind(
    table: Mapping[int, Entry],
    entry: Entry,
    nat: Nat | None,
    hook: str,
    out_addr: int | None,
    rng: random.Random,
) -> bool:
    """`nf_nat_setup_info`: bind this hook's manip type once; `nat=None` is the null binding.

    Returns True if the entry's tuples changed. A null source binding still avoids a clash by
    remapping the source port, as the kernel does for plain forwarded flows.
    """
    dst = is_dst_hook(hook)
    done = IPS_DST_NAT_DONE if dst else IPS_SRC_NAT_DONE
    if entry.status & done:
        return False
    entry.status |= done
    current = unpack(invert_key(entry.reply_key))
    if nat is None:
        if dst:
            return False
        nat = Nat(kind="SNAT", addr_min=current.src, addr_max=current.src)
    elif nat.kind == "MASQUERADE":
        nat = Nat("SNAT", out_addr, out_addr, nat.port_min, nat.port_max, nat.random, nat.random_fully)
    elif nat.kind == "REDIRECT":
        nat = Nat("DNAT", out_addr, out_addr, nat.port_min, nat.port_max, nat.random, nat.random_fully)
    target = unique_tuple(table, entry, nat, dst, out_addr, rng)
    if target == current:
        return False
    entry.reply_key = pack(target.dst, target.src, target.proto, target.dport, target.sport)
    entry.status |= IPS_DST_NAT if dst else IPS_SRC_NAT
    return True


def apply(pkt: Packet, entry: Entry, direction: int, hook: str, related: bool = False) -> bool:
    """`nf_nat_packet`: rewrite the packet for this hook and direction. Returns True if it changed.

    Original direction takes the inverse of the reply tuple; reply direction the inverse of the
    original tuple. For an ICMP error (`related`) the quoted packet is rewritten the other way.
    """
    dst = is_dst_hook(hook)
    if not entry.status & manip_bit(dst, direction):
        return False
    return rewrite(pkt, unpack(entry.orig_key if direction else entry.reply_key), dst, related)


def manip_bit(dst: bool, direction: int) -> int:
    """The status bit that says this hook's manip (`dst`: DNAT hooks) applies in this direction."""
    if direction:
        return IPS_SRC_NAT if dst else IPS_DST_NAT
    return IPS_DST_NAT if dst else IPS_SRC_NAT


def rewrite(pkt: Packet, target: FiveTuple, dst: bool, related: bool) -> bool:
    """`apply`'s rewrite, given the tuple (`entry.orig`/`entry.reply`) whose inverse is the packet's."""
    # the target tuple is the inverse: its dst is our src and vice versa
    if dst:
        new_addr, new_port = target.src, target.sport
        changed = (pkt.dst, pkt.dport) != (new_addr, new_port)
        pkt.dst = new_addr
        if not related and pkt.proto != ICMP:
            pkt.dport = new_port
        if related and pkt.inner is not None:
            pkt.inner.src, pkt.inner.sport = new_addr, new_port
    else:
        new_addr, new_port = target.dst, target.dport
        changed = (pkt.src, pkt.sport) != (new_addr, new_port)
        pkt.src = new_addr
        if not related and pkt.proto != ICMP:
            pkt.sport = new_port
        if related and pkt.inner is not None:
            pkt.inner.dst, pkt.inner.dport = new_addr, new_port
    return changed
