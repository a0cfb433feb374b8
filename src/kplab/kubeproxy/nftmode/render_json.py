"""kube-proxy's tables as `nft -j list ruleset` prints them once loaded (nft 1.0.6, JSON schema 1).

Measured on this machine (tests/kubeproxy/test_nft_kernel.py holds the two equal): the listing
is, per table, the table, its sets and maps, its chains and then every rule; there are no table or
chain comments (nft 1.0.6 leaves them out of JSON); a dynamic set written to by `update` lists
`size 65535` and its flags as `["timeout"]`; anonymous sets and verdict maps are lists; a one-element
anonymous set is the element itself. Left out: `handle`s (the kernel's allocation, meaningless
across namespaces) and element order (the kernel's hash order); elements are sorted.
"""

from __future__ import annotations

import ipaddress
import shlex

from kplab.kubeproxy.nftmode.table import Container, Table

Json = dict[str, object]
SCHEMA = {"json_schema_version": 1}
NUMERIC_FIELDS = frozenset({"dport", "sport"})


def ruleset_json(tables: list[Table]) -> Json:
    items: list[object] = [{"metainfo": dict(SCHEMA)}]
    for table in tables:
        items += table_json(table)
    return {"nftables": items}


def table_json(table: Table) -> list[object]:
    fam = table.family
    head = {"family": fam, "table": "kube-proxy"}
    out: list[object] = [{"table": {"family": fam, "name": "kube-proxy"}}]
    for kind in ("set", "map"):
        for name in table.names(kind):
            out.append({kind: _set(fam, name, table.objects[name])})
    for name in table.names("chain"):
        out.append({"chain": {**head, "name": name, **_chain_spec(table.objects[name].spec)}})
    for name in table.names("chain"):
        for rule in table.objects[name].rules:
            out.append({"rule": {**head, "chain": name, **rule_json(rule, fam)}})
    return out


def _spec_fields(spec: str) -> dict[str, str]:
    """`{ type a . b : verdict ; flags x ; comment "c" ; }` -> {"type": "a . b : verdict", ...}."""
    fields: dict[str, str] = {}
    for part in spec.strip("{} ").split(" ; "):
        key, _, value = part.strip(" ;").partition(" ")
        if key:
            fields[key] = value
    return fields


def _chain_spec(spec: str) -> Json:
    fields = _spec_fields(spec)
    if "type" not in fields:
        return {}
    kind, _, rest = fields["type"].partition(" hook ")
    hook, _, prio = rest.partition(" priority ")
    return {"type": kind, "hook": hook, "prio": int(prio), "policy": "accept"}


def _set(family: str, name: str, obj: Container) -> Json:
    fields = _spec_fields(obj.spec)
    key_type, _, data = fields["type"].partition(" : ")
    types = key_type.split(" . ")
    out: Json = {"family": family, "name": name, "table": "kube-proxy"}
    out["type"] = types if len(types) > 1 else types[0]
    if "comment" in fields:
        out["comment"] = shlex.split(fields["comment"])[0]
    if data:
        out["map"] = data
    if "timeout" in fields:
        out["size"] = 65535  # the kernel's default for a set written by `update`
        out["flags"] = [f for f in fields.get("flags", "").split(",") if f != "dynamic"]
        out["timeout"] = int(fields["timeout"].rstrip("s"))
    elements = sorted(obj.elements.values())
    if elements:
        out["elem"] = [_element(e, bool(data)) for e in elements]
    return out


def _element(body: str, is_map: bool) -> object:
    words = shlex.split(body.strip("{} "))
    key: list[str] = []
    comment = None
    while words and words[0] != ":":
        word = words.pop(0)
        if word == "comment":
            comment = words.pop(0)
        elif word != ".":
            key.append(word)
    value = _concat_values(key)
    if comment is not None:
        value = {"elem": {"val": value, "comment": comment}}
    if not is_map:
        return value
    return [value, _verdict(words[1:])]


def _concat_values(words: list[str]) -> object:
    values = [_value(w) for w in words]
    return {"concat": values} if len(values) > 1 else values[0]


def _value(word: str) -> object:
    if word.isdigit():
        return int(word)
    if "/" in word and not word.startswith("@"):
        net = ipaddress.ip_network(word, strict=False)
        return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    return word


def _verdict(words: list[str]) -> Json:
    if words[0] in ("jump", "goto"):
        return {words[0]: {"target": words[1]}}
    return {words[0]: None}


def _int(text: str) -> int:
    return int(text, 0)


def rule_json(rule: str, family: str) -> Json:
    """One rule as kube-proxy writes it (the shapes of pkg/proxy/nftables) to its JSON listing."""
    words = shlex.split(rule, posix=True)
    comment = None
    if "comment" in words:
        at = words.index("comment")
        comment, words = words[at + 1], words[:at]
    expr: list[object] = []
    i = 0
    while i < len(words):
        i = _statement(words, i, family, expr)
    out: Json = {}
    if comment is not None:
        out["comment"] = comment
    out["expr"] = expr
    return out


def _payload(proto: str, field: str) -> Json:
    return {"payload": {"protocol": proto, "field": field}}


def _match(op: str, left: object, right: object) -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _anon_set(words: list[str]) -> object:
    items = [_value(w.strip(",")) for w in " ".join(words).replace(",", " ").split()]
    if len(items) == 1:
        return items[0]
    return {"set": sorted(items, key=_address_key)}


def _address_key(item: object) -> tuple[int, int]:
    if isinstance(item, dict):
        prefix = item["prefix"]
        return int(ipaddress.ip_address(prefix["addr"])), 0
    return int(ipaddress.ip_address(str(item))), 0


def _closing(words: list[str], start: int) -> int:
    return words.index("}", start)


def _statement(w: list[str], i: int, family: str, expr: list[object]) -> int:
    word = w[i]
    if word in ("jump", "goto"):
        expr.append({word: {"target": w[i + 1]}})
        return i + 2
    if word in ("drop", "return"):
        expr.append({word: None})
        return i + 1
    if word == "reject":
        expr.append({"reject": {"type": "icmp" if family == "ip" else "icmpv6", "expr": "port-unreachable"}})
        return i + 1
    if word == "ct":  # ct state new
        expr.append(_match("in", {"ct": {"key": w[i + 1]}}, w[i + 2]))
        return i + 3
    if word == "fib":  # fib saddr type local
        expr.append(_match("==", {"fib": {"result": "type", "flags": [w[i + 1]]}}, w[i + 3]))
        return i + 4
    if word == "iifname":
        op, at = ("!=", i + 2) if w[i + 1] == "!=" else ("==", i + 1)
        expr.append(_match(op, {"meta": {"key": "iifname"}}, w[at]))
        return at + 1
    if word == "masquerade":
        expr.append({"masquerade": {"flags": w[i + 1]}})
        return i + 2
    if word == "update":  # update @set { ip saddr }
        elem = _payload(w[i + 3], w[i + 4])
        expr.append({"set": {"op": "update", "elem": elem, "set": w[i + 1]}})
        return i + 6
    if word == "numgen":  # numgen random mod N vmap { 0 : goto a , 1 : goto b }
        end = _closing(w, i)
        branches = " ".join(w[i + 6 : end]).split(" , ")
        data = []
        for branch in branches:
            index, _, verdict = branch.partition(" : ")
            data.append([int(index), _verdict(verdict.split())])
        key = {"numgen": {"mode": w[i + 1], "mod": int(w[i + 3]), "offset": 0}}
        expr.append({"vmap": {"key": key, "data": {"set": data}}})
        return end + 1
    if word == "mark":
        if w[i + 1] == "set":  # mark set mark or|xor M
            op = {"or": "|", "xor": "^"}[w[i + 3]]
            value = {op: [{"meta": {"key": "mark"}}, _int(w[i + 4])]}
            expr.append({"mangle": {"key": {"meta": {"key": "mark"}}, "value": value}})
            return i + 5
        # mark and M == V
        left = {"&": [{"meta": {"key": "mark"}}, _int(w[i + 2])]}
        expr.append(_match("==", left, _int(w[i + 4])))
        return i + 5
    if word == "dnat":  # dnat to ip:port / [ip6]:port
        target = w[i + 2]
        addr, _, port = target.rpartition(":")
        expr.append({"dnat": {"addr": addr.strip("[]"), "port": int(port)}})
        return i + 3
    if word == "meta" and w[i + 1] == "l4proto" and (i + 2 >= len(w) or w[i + 2] != "."):
        expr.append(_match("==", {"meta": {"key": "l4proto"}}, w[i + 2]))
        return i + 3
    # a concatenation key: [ip daddr .] meta l4proto . th dport vmap @map
    if "vmap" in w[i:] and (w[i + 2 : i + 3] == ["."] or word == "meta"):
        at = w.index("vmap", i)
        parts = " ".join(w[i:at]).split(" . ")
        keys: list[object] = []
        for part in parts:
            a, b = part.split()
            keys.append({"meta": {"key": b}} if a == "meta" else _payload(a, b))
        expr.append({"vmap": {"key": {"concat": keys}, "data": w[at + 1]}})
        return at + 2
    if word in ("ip", "ip6", "tcp", "udp", "sctp"):  # ip daddr [!=] value | tcp dport N
        field = w[i + 1]
        op, at = ("!=", i + 3) if w[i + 2] == "!=" else ("==", i + 2)
        if w[at] == "{":
            end = _closing(w, at)
            right = _anon_set(w[at + 1 : end])
            nxt = end + 1
        else:
            right = int(w[at]) if field in NUMERIC_FIELDS else _value(w[at])
            nxt = at + 1
        expr.append(_match(op, _payload(word, field), right))
        return nxt
    raise ValueError(f"kube-proxy rule not understood at {word!r}: {' '.join(w)}")
