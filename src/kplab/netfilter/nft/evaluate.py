"""One nft base chain for one packet, as `nft_do_chain` walks it.

Rules in order; a rule's ops run until one fails (next rule) or gives a verdict. `jump` pushes a
return point, `goto` does not; `return` or the end of a regular chain pops; with nothing to pop,
the base chain's policy applies. `accept` ends this base chain only (the hook goes on with the next
one); `drop` and `reject` are final. A NAT statement decides (`skb.nat`) and accepts. The trace, when
asked for, gets one entry per rule whose matches all held, one per `return` at a chain's end and
the policy, as `nft monitor trace` prints them.
"""

from __future__ import annotations

from kplab.netfilter.engine import TraceEntry
from kplab.netfilter.model import Source
from kplab.netfilter.nft.ops import (
    ACCEPT,
    BREAK,
    CONTINUE,
    GOTO,
    JUMP,
    NEXT,
    RETURN,
    CChain,
    CRule,
    Ctx,
)

MAX_DEPTH = 16  # NFT_JUMP_STACK_SIZE


def run_chain(base: CChain, c: Ctx, trace: list[TraceEntry] | None = None) -> int:
    """The verdict of base chain `base` for the packet: ACCEPT, DROP, REJECT or QUEUE."""
    stack: list[tuple[CChain, int]] = []
    chain = base
    rules = chain.rules
    pos = 0
    while True:
        if pos >= len(rules):
            if not stack:
                return _policy(base, trace)
            if trace is not None:
                trace.append(TraceEntry(chain.table, chain.name, "return", len(rules) + 1))
            chain, pos = stack.pop()
            rules = chain.rules
            continue
        crule = rules[pos]
        pos += 1
        code = NEXT
        for op in crule.ops:
            code = op.run(c)
            if code != NEXT:
                break
        if code == BREAK:
            continue
        if trace is not None:
            trace.append(_entry(chain, crule))
        if code in (NEXT, CONTINUE):
            continue
        if code in (JUMP, GOTO):
            target = c.target
            assert target is not None
            if code == JUMP:
                if len(stack) >= MAX_DEPTH:
                    return _policy(base, trace)
                stack.append((chain, pos))
            chain, rules, pos = target, target.rules, 0
            continue
        if code == RETURN:
            if not stack:
                return _policy(base, trace)
            chain, pos = stack.pop()
            rules = chain.rules
            continue
        return code


def _entry(chain: CChain, crule: CRule) -> TraceEntry:
    source = Source(crule.source_file, crule.source_line)
    return TraceEntry(chain.table, chain.name, "rule", crule.number, None, source, None, crule.text)


def _policy(chain: CChain, trace: list[TraceEntry] | None) -> int:
    if trace is not None:
        name = "ACCEPT" if chain.policy == ACCEPT else "DROP"
        trace.append(TraceEntry(chain.table, chain.name, "policy", len(chain.rules) + 1, None, None, name))
    return chain.policy
