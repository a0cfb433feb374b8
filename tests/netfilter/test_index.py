"""The fast-path index gives exactly what the linear walk gives (property test)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kplab.netfilter.chainwalk import walk
from kplab.netfilter.compiler import compile_ruleset
from kplab.netfilter.engine import Block, Fan, TraceEntry
from kplab.netfilter.iptables_save import parse
from kplab.netfilter.state import EngineState, Env, Skb
from kplab.packet import TCP, UDP, Packet, ip

ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
PORTS = [80, 443, 8080]

dst = st.sampled_from(["", *(f"-d {a}" for a in ADDRS), *(f"-d {a}/32" for a in ADDRS), "-d 10.0.0.0/30",
                       "! -d 10.0.0.1"])  # fmt: skip
proto = st.sampled_from(["-p tcp", "-p tcp", "-p udp", ""])
port = st.sampled_from(["", *(f"--dport {p}" for p in PORTS), "--dport 80:443", "! --dport 80"])
extra = st.sampled_from(
    [
        "",
        "",
        "-s 192.168.0.0/24",
        "-m mark --mark 0x1/0x1",
        "! -s 192.168.0.7",
        "-m statistic --mode random --probability 0.5",
        "-m comment --comment x -m statistic --mode random --probability 0.25",
    ]
)
target = st.sampled_from(
    ["-j ACCEPT", "-j DROP", "-j RETURN", "-j SUB", "-g SUB", "-j MARK --or-mark 0x1", ""]
)


@st.composite
def rule(draw: st.DrawFn, chain: str) -> str:
    p = draw(proto)
    words = [f"-A {chain}", draw(dst), p]
    if p:
        module = p.split()[1]
        ports = draw(port)
        if ports:
            words.append(f"-m {module} {ports}")
    words += [
        draw(extra),
        draw(target) if chain == "INPUT" else draw(target.filter(lambda t: "SUB" not in t)),
    ]
    return " ".join(w for w in words if w)


fan_rule = st.sampled_from(
    [
        "-A INPUT -m statistic --mode random --probability 0.5 -j SUB",
        "-A INPUT -m comment --comment e -m statistic --mode random --probability 0.33 -g SUB",
    ]
)


@st.composite
def ruleset_text(draw: st.DrawFn) -> str:
    main = draw(st.lists(st.one_of(rule("INPUT"), fan_rule), max_size=30))
    sub = draw(st.lists(rule("SUB"), max_size=8))
    return (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:SUB - [0:0]\n"
        + "\n".join(main + sub)
        + "\nCOMMIT\n"
    )


packets = st.builds(
    lambda s, d, pr, dp, mark: (Packet(ip(s), ip(d), pr, 1234, dp), mark),
    st.sampled_from(["192.168.0.7", "192.168.1.1"]),
    st.sampled_from([*ADDRS, "10.0.0.9"]),
    st.sampled_from([TCP, UDP]),
    st.sampled_from([*PORTS, 81, 443]),
    st.sampled_from([0, 1]),
)


def run(engine, pkt: Packet, mark: int) -> tuple[int, int, list[tuple[str, str, int]]]:  # type: ignore[no-untyped-def]
    trace: list[TraceEntry] = []
    skb = Skb(mark=mark)
    verdict = walk(engine.chain("filter", "INPUT"), pkt.copy(), skb, Env(0, EngineState.seeded(0)), trace)
    return verdict, skb.mark, [(e.chain, e.kind, e.number) for e in trace]


@settings(max_examples=300, deadline=None)
@given(ruleset_text(), st.lists(packets, min_size=1, max_size=8), st.sampled_from([1, 2, 4]))
def test_indexed_equals_linear(text: str, pkts: list[tuple[Packet, int]], min_block: int) -> None:
    ruleset = parse(text, "random")
    linear = compile_ruleset(ruleset, indexed=False)
    indexed = compile_ruleset(ruleset, indexed=True, min_block=min_block)
    for pkt, mark in pkts:
        assert run(indexed, pkt, mark) == run(linear, pkt, mark)


def test_endpoint_choice_becomes_a_fan_with_the_same_draws() -> None:
    text = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n"
        "-A PREROUTING -m statistic --mode random --probability 0.3333333333 -j A\n"
        "-A PREROUTING -m comment --comment x -m statistic --mode random --probability 0.5 -j B\n"
        "-A PREROUTING -j C\n-A A -j MARK --or-mark 1\n-A B -j MARK --or-mark 2\n-A C -j MARK --or-mark 4\n"
        "COMMIT\n"
    )
    ruleset = parse(text, "x")
    indexed, linear = compile_ruleset(ruleset), compile_ruleset(ruleset, indexed=False)
    chain = indexed.chain("nat", "PREROUTING")
    assert (
        chain is not None and isinstance(chain.steps[0], Fan) and chain.steps[0].fixed == (715827883, 1 << 30)
    )
    marks = []
    for engine in (indexed, linear):
        state = EngineState.seeded(5)
        seen = []
        for _ in range(300):
            skb = Skb()
            walk(engine.chain("nat", "PREROUTING"), Packet(1, 2), skb, Env(0, state))
            seen.append(skb.mark)
        marks.append(seen)
    assert marks[0] == marks[1] and len(set(marks[0])) >= 3  # after a return, the next draws still run


def test_kube_services_chain_becomes_one_block() -> None:
    rules = "\n".join(
        f'-A KUBE-SERVICES -d 172.30.{i // 250}.{i % 250 + 1}/32 -p tcp -m comment --comment "svc{i}" '
        f"-m tcp --dport 80 -j KUBE-SVC-{i}"
        for i in range(100)
    )
    chains = "".join(f":KUBE-SVC-{i} - [0:0]\n-A KUBE-SVC-{i} -j ACCEPT\n" for i in range(100))
    declared = "".join(f":KUBE-SVC-{i} - [0:0]\n" for i in range(100))
    body = "\n".join(line for line in chains.splitlines() if line.startswith("-A"))
    text = (
        f"*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n{declared}{rules}\n"
        "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j RETURN\n" + body + "\nCOMMIT\n"
    )
    engine = compile_ruleset(parse(text, "x"))
    chain = engine.chain("nat", "KUBE-SERVICES")
    assert chain is not None
    assert [type(s).__name__ for s in chain.steps] == ["Block", "CRule"]
    block = chain.steps[0]
    assert isinstance(block, Block) and block.size == 100 and len(block.table) == 100
    trace: list[TraceEntry] = []
    pkt = Packet(ip("10.0.0.2"), ip("172.30.0.77"), TCP, 1, 80)
    walk(chain, pkt, Skb(), Env(0, EngineState.seeded(0)), trace)
    assert [(e.chain, e.number) for e in trace][:2] == [("KUBE-SERVICES", 77), ("KUBE-SVC-76", 1)]
