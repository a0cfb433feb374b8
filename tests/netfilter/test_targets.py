"""Targets and chain semantics (jump, goto, return, policy, loops)."""

from __future__ import annotations

import pytest

from kplab.errors import InputError
from kplab.netfilter.chainwalk import walk
from kplab.netfilter.ctview import CtView, Nat
from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.state import EngineState, Env, Skb
from kplab.packet import TCP, Packet, ip

from .helpers import engine_of


def run(rules: str, skb: Skb | None = None, table: str = "filter", chain: str = "INPUT", **kw):  # type: ignore[no-untyped-def]
    engine = engine_of(rules, table, **kw)
    skb = skb or Skb()
    trace: list[TraceEntry] = []
    pkt = Packet(ip("10.0.0.2"), ip("192.168.0.2"), TCP, 40000, 80)
    verdict = walk(engine.chain(table, chain), pkt, skb, Env(0, EngineState.seeded(0)), trace)
    return verdict, skb, trace


@pytest.mark.parametrize(
    ("target", "before", "after"),
    [
        ("MARK --set-xmark 0x4/0xff", 0x1F3, 0x104),
        ("MARK --set-mark 0x7", 0x1F3, 0x7),
        ("MARK --set-mark 0x5/0x7", 0xF2, 0xF5),
        ("MARK --or-mark 0x4000", 0x1, 0x4001),
        ("MARK --xor-mark 0x4000", 0x4001, 0x1),
        ("MARK --and-mark 0x4000", 0x4001, 0x4000),
    ],
)
def test_mark_forms(target: str, before: int, after: int) -> None:
    verdict, skb, _ = run(f"-A INPUT -j {target}", Skb(mark=before), "mangle")
    assert (verdict, skb.mark) == (1, after)


def test_connmark_set_save_restore_with_masks() -> None:
    view = CtView("ESTABLISHED", mark=0xAB00)
    _, skb, _ = run(
        "-A INPUT -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff", Skb(mark=0x1234, ct=view), "mangle"
    )
    assert view.mark == 0xAB34
    _, skb, _ = run(
        "-A INPUT -j CONNMARK --restore-mark --nfmask 0xf00 --ctmask 0xf00", Skb(mark=0x1, ct=view), "mangle"
    )
    assert skb.mark == 0xB01
    run("-A INPUT -j CONNMARK --set-xmark 0x5/0xf", Skb(ct=view), "mangle")
    assert view.mark == 0xAB35
    _, skb, _ = run("-A INPUT -j CONNMARK --restore-mark", Skb(mark=0x1), "mangle")  # no entry: no-op
    assert skb.mark == 0x1


def test_notrack_and_ct_notrack_make_the_packet_untracked() -> None:
    for target in ("NOTRACK", "CT --notrack"):
        verdict, skb, _ = run(f"-A PREROUTING -j {target}", table="raw", chain="PREROUTING")
        assert verdict == 1 and skb.ct is not None and skb.ct.state == "UNTRACKED"


def test_reject_with_and_non_terminating_log_nflog_trace() -> None:
    verdict, skb, trace = run(
        "-A INPUT -j LOG --log-prefix x\n-A INPUT -j NFLOG --nflog-group 2\n-A INPUT -j TRACE\n"
        "-A INPUT -j REJECT --reject-with tcp-reset\n-A INPUT -j ACCEPT"
    )
    assert verdict == 100 and skb.reject_with == "tcp-reset" and skb.traced
    assert [e.number for e in trace] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("target", "nat"),
    [
        ("DNAT --to-destination 10.0.0.1:8080", Nat("DNAT", ip("10.0.0.1"), ip("10.0.0.1"), 8080, 8080)),
        (
            "DNAT --to-destination 10.0.0.1-10.0.0.5:80-90 --random --persistent",
            Nat("DNAT", ip("10.0.0.1"), ip("10.0.0.5"), 80, 90, random=True, persistent=True),
        ),
        ("SNAT --to-source 1.1.1.1", Nat("SNAT", ip("1.1.1.1"), ip("1.1.1.1"))),
        (
            "MASQUERADE --to-ports 1000-2000 --random-fully",
            Nat("MASQUERADE", None, None, 1000, 2000, random_fully=True),
        ),
        ("REDIRECT --to-ports 3000", Nat("REDIRECT", None, None, 3000, 3000)),
    ],
)
def test_nat_targets_decide_and_accept(target: str, nat: Nat) -> None:
    verdict, skb, _ = run(
        f"-A PREROUTING -p tcp -j {target}\n-A PREROUTING -j DROP", table="nat", chain="PREROUTING"
    )
    assert (verdict, skb.nat) == (1, nat)


def test_jump_return_goto_and_policy() -> None:
    rules = (
        "-A INPUT -j A\n-A INPUT -g B\n-A INPUT -j DROP\n"
        "-A A -j MARK --or-mark 1\n-A A -j RETURN\n-A A -j DROP\n"
        "-A B -j MARK --or-mark 2\n"  # end of B: back to INPUT's caller = none -> policy
    )
    verdict, skb, trace = run(rules, table="mangle")
    assert verdict == 1 and skb.mark == 3
    steps = [(e.chain, e.kind, e.number) for e in trace]
    assert steps == [
        ("INPUT", "rule", 1),
        ("A", "rule", 1),
        ("A", "rule", 2),
        ("INPUT", "rule", 2),
        ("B", "rule", 1),
        ("INPUT", "policy", 4),
    ]


def test_drop_policy_and_rule_without_target() -> None:
    engine = engine_of("-A INPUT -s 10.0.0.0/8")
    ruleset_policy = engine.chain("filter", "INPUT")
    assert ruleset_policy is not None
    ruleset_policy.policy = 0
    pkt = Packet(ip("10.0.0.2"), ip("1.1.1.1"))
    trace: list[TraceEntry] = []
    assert walk(ruleset_policy, pkt, Skb(), Env(0, EngineState.seeded(0)), trace) == 0
    assert [(e.kind, e.verdict) for e in trace] == [("rule", None), ("policy", "DROP")]


def test_loops_are_refused() -> None:
    with pytest.raises(InputError, match=r"^rules:\d+: loop: chain 'A' reaches itself"):
        engine_of("-A INPUT -j A\n-A A -j B\n-A B -j A")


@pytest.mark.parametrize(("policy", "hits"), [("never-match", [2]), ("always-match", [1, 2])])
def test_unknown_target_policy(policy: str, hits: list[int]) -> None:
    verdict, _, trace = run("-A INPUT -j TEE --gateway 1.1.1.1\n-A INPUT -j DROP", unknown=policy)
    assert verdict == 0 and [e.number for e in trace] == hits


def test_unknown_target_fails_when_reached() -> None:
    with pytest.raises(InputError, match=r"^rules:\d+: unsupported target 'KUBE-SVC-NOPE'$"):
        run("-A INPUT -j KUBE-SVC-NOPE")
