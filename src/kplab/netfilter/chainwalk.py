"""The chain walker: one packet through one compiled built-in chain, as `ipt_do_table` walks it.

Theory of operation
-------------------
`walk(start, pkt, skb, env, trace)` returns the verdict of the built-in chain `start` for the
packet: ACCEPT, DROP, REJECT or QUEUE (`state.Verdict`). The rules are those the compiler made
(`compiler`, types in `engine`); a chain's `steps` are its rules with some runs folded by the
index (`index`): a `Block` hands over only the rules under the packet's key, a `Fan` makes a run
of random draws at once. Both visit the same rules in the same order as the plain rule list
would, so the walk below is `ipt_do_table`'s whatever the folding.

The loop state, all local variables:

    chain       the chain being walked (its name and table label the trace; `start` at first)
    steps, pos  that chain's steps and the index of the next one
    cands, ci   a run of rules to take before `steps[pos]`, and the next index in it: the rules a
                Block holds under the packet's key, or the rest of a Fan after its hit (to
                resume there when the jumped-to chain returns). Empty when there is none.
    stack       return points `(chain, pos, cands, ci)` pushed by `-j CHAIN` (not by `-g`)

Each turn takes the next rule (from `cands`, else from `steps`, unfolding a Block or Fan), tests
its predicates in order, and on a match does what the rule says:

    no target   continue with the next rule (a TRACE line is all it leaves)
    -j CHAIN    push the return point, walk CHAIN from its start
    -g CHAIN    walk CHAIN from its start without a return point
    ACCEPT/DROP, or an action's verdict (REJECT, QUEUE): the chain's verdict; the walk ends
    RETURN      pop a return point, or, with none (RETURN in the built-in chain), the policy
    an action that continues (MARK, CONNMARK, LOG, ...): the next rule
    DNAT/SNAT/MASQUERADE/REDIRECT: the decision goes into `skb.nat`, the verdict is ACCEPT

When a chain's steps run out: a user chain returns to the last return point (`return` in the
trace); the built-in chain, or a chain reached by `-g` with nothing pushed, applies `start`'s
policy (`policy` in the trace). Matches keep their state in `env.state`, never in the chain: the
compiled chains are shared and read-only.

`trace`, when a list, gets a `TraceEntry` per matching rule, per return and for the policy, as
`iptables -j TRACE` prints them (`table:chain:rule:N`); when None the walk does no bookkeeping.
"""

from __future__ import annotations

from typing import Final

from kplab.netfilter.engine import (
    K_GOTO,
    K_JUMP,
    K_NAT,
    K_NONE,
    K_VERDICT,
    Block,
    CChain,
    CRule,
    Fan,
    TraceEntry,
)
from kplab.netfilter.state import CONTINUE, RETURN, Env, Skb, Verdict
from kplab.packet import Packet

ACCEPT: Final = int(Verdict.ACCEPT)
_NONE: tuple[CRule, ...] = ()


def walk(start: CChain, pkt: Packet, skb: Skb, env: Env, trace: list[TraceEntry] | None = None) -> int:
    """The verdict of the built-in chain `start` for the packet (see the module docstring)."""
    stack: list[tuple[CChain, int, tuple[CRule, ...], int]] = []
    chain = start
    steps = chain.steps
    pos = 0
    cands = _NONE
    ci = 0
    while True:
        if ci < len(cands):
            crule = cands[ci]
            ci += 1
        elif pos < len(steps):
            step = steps[pos]
            pos += 1
            if isinstance(step, CRule):
                crule = step
            elif isinstance(step, Block):  # only the rules under the packet's key
                if step.key_kind == 0:
                    found = step.table.get((pkt.dst, pkt.proto, pkt.dport))
                else:
                    found = step.table.get((pkt.proto, pkt.dport))
                if found is None:
                    continue
                if isinstance(found, CRule):  # the usual case: one rule, stored bare
                    crule = found
                else:  # several rules under this key
                    cands, ci = found, 0
                    continue
            else:  # a Fan: the draws of the run at once
                hit = _draw(step, env)
                if hit < 0:
                    continue
                crule = step.hits[hit]
                cands, ci = step.rules, hit + 1
        else:  # the end of the chain
            if not stack:
                return _policy(start, trace)
            if trace is not None:
                trace.append(TraceEntry(chain.table, chain.name, "return", len(chain.rules) + 1))
            chain, pos, cands, ci = stack.pop()
            steps = chain.steps
            continue
        for pred in crule.preds:
            if not pred(pkt, skb, env):
                break
        else:
            if trace is not None:
                trace.append(TraceEntry(chain.table, chain.name, "rule", crule.number, crule.rule))
            kind = crule.kind
            if kind == K_NONE:
                continue
            if kind in (K_JUMP, K_GOTO):
                target = crule.chain
                assert target is not None  # the compiler resolves every jump
                if kind == K_JUMP:
                    stack.append((chain, pos, cands, ci))
                chain = target
                steps = crule.steps  # the target's steps, without touching the chain object
                pos, cands, ci = 0, _NONE, 0
                continue
            if kind == K_NAT:  # decide, accept (`xt_nat`, `masquerade_tg`, `redirect_tg`)
                nat = crule.nat
                skb.nat = nat
                if nat is not None and nat.kind == "MASQUERADE":
                    skb.masqueraded = True
                return ACCEPT
            if kind == K_VERDICT:
                verdict = crule.verdict
            else:
                action = crule.action
                assert action is not None  # K_ACTION
                verdict = action(pkt, skb, env)
            if verdict == CONTINUE:
                continue
            if verdict == RETURN:
                if not stack:
                    return _policy(start, trace)
                chain, pos, cands, ci = stack.pop()
                steps = chain.steps
                continue
            return verdict


def _draw(fan: Fan, env: Env) -> int:
    """The first rule of the fan whose draw succeeds (`statistic_mt`), or -1."""
    chooser = env.chooser
    if chooser is not None:
        for index, fixed in enumerate(fan.fixed):
            if chooser(fixed):
                return index
        return -1
    bits = env.state.rng.getrandbits
    for index, fixed in enumerate(fan.fixed):
        if bits(31) < fixed:
            return index
    return -1


def _policy(chain: CChain, trace: list[TraceEntry] | None) -> int:
    if trace is not None:
        name = "ACCEPT" if chain.policy == ACCEPT else "DROP"
        trace.append(
            TraceEntry(chain.table, chain.name, "policy", len(chain.rules) + 1, None, chain.source, name)
        )
    return chain.policy
