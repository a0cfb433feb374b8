"""The three forms of one ruleset (knftables `add` commands, `nft list ruleset` text, `nft -j` JSON)
read to the same model; bad input is one located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplab.errors import InputError
from kplab.netfilter.nft.compile import compile_nft
from kplab.netfilter.nft.load import parse_nft, read_nft
from kplab.netfilter.nft.model import Interval, Match, NatStmt, SetUpdate, VMap
from kplab.netfilter.nft.values import parse_priority

from .helpers import OVERALL, canonical


def test_the_three_forms_read_to_one_model() -> None:
    models = {form: canonical(read_nft(str(path))) for form, path in OVERALL.items()}
    assert models["nft"] == models["list"] == models["json"]
    table = models["nft"]["ip kube-proxy"]
    assert len(table["chains"]) == 32 and len(table["sets"]) == 8
    assert sum(len(s[3]) for s in table["sets"].values()) == 24


def test_base_chains_have_their_hooks_and_numeric_priorities() -> None:
    rs = read_nft(str(OVERALL["list"]))
    chains = {c.name: (c.type, c.hook, c.priority) for _, c in rs.base_chains()}
    assert chains["filter-prerouting-pre-dnat"] == ("filter", "prerouting", -110)  # "dstnat - 10"
    assert chains["nat-output"] == ("nat", "output", -100)
    assert chains["nat-postrouting"] == ("nat", "postrouting", 100)  # "srcnat"
    assert chains["filter-forward"] == ("filter", "forward", 0)  # "filter"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("filter", 0),
        ("dstnat - 10", -110),
        ("srcnat+5", 105),
        ("-300", -300),
        ("mangle", -150),
        ("raw", -300),
    ],
)
def test_priority_names(text: str, value: int) -> None:
    assert parse_priority(text) == value


def test_statements_are_typed() -> None:
    rs = read_nft(str(OVERALL["list"]))
    table = rs.tables[("ip", "kube-proxy")]
    fw = table.chains["firewall-HVFWP5L3-ns5/svc5/tcp/p80"].rules[0].stmts[0]
    assert isinstance(fw, Match) and fw.op == "!="
    assert fw.right == (Interval(0xCB007100, 0xCB00717F),)  # 203.0.113.0/25
    dnat = table.chains["endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"].rules[1].stmts[1]
    assert dnat == NatStmt("dnat", 0x0AB40001, 0x0AB40001, 80, 80)
    update = table.chains["endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"].rules[1].stmts[0]
    assert isinstance(update, SetUpdate) and update.op == "update"
    services = table.chains["services"].rules[0].stmts[0]
    assert isinstance(services, VMap)
    assert table.sets["affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"].timeout_s == 10800


def test_tables_kube_proxy_did_not_write_are_read_too() -> None:
    text = """table inet node-guard {
	set blocked {
		type ipv4_addr . inet_service
		flags interval
		elements = { 10.0.0.0/8 . 22, 192.168.0.1 . 1000-2000 }
	}

	chain forward {
		type filter hook forward priority filter + 5; policy drop;
		ct state established,related accept
		ct state invalid counter packets 3 bytes 120 drop
		iifname "veth*" meta mark & 0x0000ff00 != 0x00000100 log prefix "x: " accept
		ip saddr . tcp dport @blocked reject with tcp reset
		ip6 daddr ::1 drop
	}
}
"""
    rs = parse_nft(text, "guard.nft")
    chain = rs.tables[("inet", "node-guard")].chains["forward"]
    assert (chain.hook, chain.priority, chain.policy, len(chain.rules)) == ("forward", 5, "drop", 5)
    engine = compile_nft(rs)
    assert [c.name for c in engine.base_chains("forward", 4)] == ["forward"]
    assert [c.name for c in engine.base_chains("forward", 6)] == ["forward"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "table ip t {\n\tchain c {\n\t\tip daddr 10.0.0.300 drop\n\t}\n}\n",
            "x.nft:3: not an IPv4 address: '10.0.0.300'",
        ),
        ("add table ip t\nadd rule ip t nosuch drop\n", "x.nft:2: no chain 'nosuch' in table ip t"),
        ("add table ip t\nadd chain ip t c\nadd rule ip t c jump d\n", "x.nft:3: jump to unknown chain 'd'"),
        (
            "add table ip t\nadd chain ip t c\nadd rule ip t c ip daddr @s drop\n",
            "x.nft:3: no set or map 's' in table ip t",
        ),
        (
            "add table ip t\nadd chain ip t c { type filter hook input priority bogus ; }\n",
            "x.nft:2: bad priority: not a number: 'bogus'",
        ),
        (
            "add table ip t\nadd chain ip t c\nadd rule ip t c meta skuid 0 drop\n",
            "x.nft:3: kplab does not evaluate 'meta skuid 0'",
        ),
        (
            "add table ip t\nadd chain ip t a\nadd chain ip t b\n"
            "add rule ip t a jump b\nadd rule ip t b goto a\n",
            "x.nft:5: loop: chain 'a' reaches itself",
        ),
        (
            "add table ip t\nadd chain ip t c\nadd rule ip t c limit rate 10/second accept\n",
            "x.nft:3: kplab does not evaluate 'limit rate 10/second'",
        ),
        ('table ip t {\n\tchain c {\n\t\tcomment "open\n', "x.nft:3: unterminated string"),
        ("table ip t {\n\tchain c {\n", "x.nft:2: expected '}', got the end of the file"),
        ("bogus\n", "x.nft:1: unknown command 'bogus'"),
    ],
)
def test_bad_text_is_one_located_line(text: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        compile_nft(parse_nft(text, "x.nft"))
    assert str(err.value) == message


J_TABLE = '{"table": {"family": "ip", "name": "t"}}'
J_CHAIN = '{"chain": {"family": "ip", "table": "t", "name": "c"}}'


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            '{"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"drop": null}]}}',
            "nftables[0].rule.table: no table 'ip t' declared before",
        ),
        (
            f'{J_TABLE}, {J_CHAIN}, {{"rule": {{"family": "ip", "table": "t", "chain": "c", "expr": ['
            '{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, '
            '"right": "1.2.3"}}]}}',
            "nftables[2].rule.expr[0].match.right: not an IPv4 address: '1.2.3'",
        ),
        (
            f'{J_TABLE}, {J_CHAIN}, {{"rule": {{"family": "ip", "table": "t", "chain": "c", "expr": ['
            '{"match": {"op": "==", "left": {"socket": {"key": "transparent"}}, "right": 1}}]}}',
            "nftables[2]: kplab does not evaluate "
            '\'{"match":{"op":"==","left":{"socket":{"key":"transparent"}},"right":1}}\'',
        ),
        (
            f'{J_TABLE}, {J_CHAIN}, {{"rule": {{"family": "ip", "table": "t", "chain": "c", "expr": ['
            '{"jump": {"target": "gone"}}]}}',
            "nftables[2]: jump to unknown chain 'gone'",
        ),
        (
            f'{J_TABLE}, {{"chain": {{"family": "ip", "table": "t", "name": "b", "type": "filter", '
            '"hook": "input", "prio": "x"}}',
            'nftables[1].chain.prio: expected an integer, got "x"',
        ),
    ],
)
def test_bad_json_names_the_path(items: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        compile_nft(parse_nft('{"nftables": [' + items + "]}", "x.json"))
    assert str(err.value) == f"x.json: {message}"


def test_json_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        parse_nft('{"nftables": [\n  {"table": }\n]}', "x.json")
    assert str(err.value).startswith("x.json:2: not JSON")
