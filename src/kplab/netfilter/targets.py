"""Targets compiled into actions `(packet, skb, env) -> verdict code`.

Terminating targets return a verdict (ACCEPT, DROP, REJECT, and the NAT targets, which decide a
`ctview.Nat` for the connection and accept); the others change the skb or its conntrack view and
return CONTINUE (MARK, CONNMARK, CT --notrack/NOTRACK, LOG, NFLOG, TRACE). Jumps to user chains
and the standard verdicts are handled by the engine itself. A target kplab does not know follows
the caller's `unknown` policy: "error" raises `InputError("file:line: unsupported target 'X'")`
when evaluated, "never-match" makes the rule never match, "always-match" makes it a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kplab.errors import InputError, located
from kplab.netfilter import values
from kplab.netfilter.ctview import CtView, Nat
from kplab.netfilter.model import Rule, Target
from kplab.netfilter.state import CONTINUE, Env, Skb, Verdict
from kplab.packet import Packet

Action = Callable[[Packet, Skb, Env], int]
ACCEPT = int(Verdict.ACCEPT)
REJECT = int(Verdict.REJECT)
UNTRACKED = "UNTRACKED"


def _error(rule: Rule, message: str) -> InputError:
    return located(rule.source.file, rule.source.line, message)


def _opts(target: Target) -> dict[str, tuple[str, ...]]:
    return {opt.name: opt.values for opt in target.options}


def _first(opts: dict[str, tuple[str, ...]], name: str) -> str:
    found = opts.get(name, ())
    return found[0] if found else ""


def xmark_of(opts: dict[str, tuple[str, ...]]) -> tuple[int, int] | None:
    """MARK/CONNMARK value and mask as `--set-xmark` means them: new = (old & ~mask) ^ value.

    libxt_MARK translates the other forms: `--set-mark v/m` -> v/(m|v), `--or-mark v` -> v/v,
    `--and-mark v` -> 0/~v, `--xor-mark v` -> v/0.
    """
    if "--set-xmark" in opts:
        return values.mark(_first(opts, "--set-xmark"))
    if "--set-mark" in opts:
        value, mask = values.mark(_first(opts, "--set-mark"))
        return value, mask | value
    if "--or-mark" in opts:
        value = values.number(_first(opts, "--or-mark"), "mark")
        return value, value
    if "--and-mark" in opts:
        value = values.number(_first(opts, "--and-mark"), "mark")
        return 0, ~value & 0xFFFFFFFF
    if "--xor-mark" in opts:
        return values.number(_first(opts, "--xor-mark"), "mark"), 0
    return None


def _mark(opts: dict[str, tuple[str, ...]], rule: Rule) -> Action:
    """xt_MARK `mark_tg`."""
    xmark = xmark_of(opts)
    if xmark is None:
        raise _error(rule, "MARK needs --set-xmark, --set-mark, --or-mark, --and-mark or --xor-mark")
    value, mask = xmark
    keep = ~mask & 0xFFFFFFFF

    def action(p: Packet, s: Skb, e: Env) -> int:
        s.mark = (s.mark & keep) ^ value
        return CONTINUE

    return action


def _connmark(opts: dict[str, tuple[str, ...]], rule: Rule) -> Action:
    """xt_CONNMARK `connmark_tg_shift` (shift 0): set, save (skb -> ct) or restore (ct -> skb)."""
    full = 0xFFFFFFFF
    mask_opt = values.number(_first(opts, "--mask"), "mask") if "--mask" in opts else full
    nfmask = values.number(_first(opts, "--nfmask"), "mask") if "--nfmask" in opts else mask_opt
    ctmask = values.number(_first(opts, "--ctmask"), "mask") if "--ctmask" in opts else mask_opt
    xmark = xmark_of(opts)
    save, restore = "--save-mark" in opts, "--restore-mark" in opts
    if xmark is None and not save and not restore:
        raise _error(rule, "CONNMARK needs --set-xmark/--set-mark, --save-mark or --restore-mark")

    def action(p: Packet, s: Skb, e: Env) -> int:
        view = s.ct
        if view is None or view.state == UNTRACKED:
            return CONTINUE
        if xmark is not None:
            view.mark = (view.mark & ~xmark[1] & full) ^ xmark[0]
        elif save:
            view.mark = (view.mark & ~ctmask & full) ^ (s.mark & nfmask)
        else:
            s.mark = (s.mark & ~nfmask & full) ^ (view.mark & ctmask)
        return CONTINUE

    return action


def _notrack(p: Packet, s: Skb, e: Env) -> int:
    """CT --notrack / NOTRACK: the packet gets the untracked pseudo-entry (skips conntrack)."""
    s.ct = CtView(UNTRACKED)
    return CONTINUE


def _continue(p: Packet, s: Skb, e: Env) -> int:
    return CONTINUE


def _trace(p: Packet, s: Skb, e: Env) -> int:
    s.traced = True
    return CONTINUE


def _reject(opts: dict[str, tuple[str, ...]]) -> Action:
    kind = _first(opts, "--reject-with") or "icmp-port-unreachable"

    def action(p: Packet, s: Skb, e: Env) -> int:
        s.reject_with = kind
        return REJECT

    return action


def nat_of(name: str, opts: dict[str, tuple[str, ...]]) -> Nat:
    """The NAT decision of a DNAT/SNAT/MASQUERADE/REDIRECT target (addresses filled in later
    for MASQUERADE and REDIRECT, which depend on the interface)."""
    rnd, fully, persistent = "--random" in opts, "--random-fully" in opts, "--persistent" in opts
    if name in ("DNAT", "SNAT"):
        text = _first(opts, "--to-destination" if name == "DNAT" else "--to-source") or _first(opts, "--to")
        if not text:
            raise ValueError(f"{name} needs --to-{'destination' if name == 'DNAT' else 'source'}")
        return replace(values.nat_range(text, name), random=rnd, random_fully=fully, persistent=persistent)
    port_min = port_max = None
    if "--to-ports" in opts:
        port_min, port_max = values.to_ports(_first(opts, "--to-ports"))
    return Nat(name, None, None, port_min, port_max, rnd, fully, persistent)


def _nat(name: str, opts: dict[str, tuple[str, ...]], rule: Rule) -> Action:
    try:
        nat = nat_of(name, opts)
    except ValueError as exc:
        raise _error(rule, str(exc)) from None
    masquerade = name == "MASQUERADE"

    def action(p: Packet, s: Skb, e: Env) -> int:
        s.nat = nat
        if masquerade:
            s.masqueraded = True
        return ACCEPT

    return action


def _unknown(rule: Rule, name: str, unknown: str) -> Action | None:
    if unknown == "never-match":
        return None
    if unknown == "always-match":
        return _continue
    error = _error(rule, f"unsupported target '{name}'")

    def action(p: Packet, s: Skb, e: Env) -> int:
        raise error

    return action


def compile_target(rule: Rule, target: Target, unknown: str) -> Action | None:
    """The action of an extension target (not a chain, not ACCEPT/DROP/RETURN), or None when the
    rule never matches (an unknown target under the "never-match" policy)."""
    opts = _opts(target)
    name = target.name
    try:
        if name == "MARK":
            return _mark(opts, rule)
        if name == "CONNMARK":
            return _connmark(opts, rule)
    except ValueError as exc:
        raise _error(rule, str(exc)) from None
    if name == "NOTRACK" or (name == "CT" and set(opts) == {"--notrack"}):
        return _notrack
    if name in ("LOG", "NFLOG"):
        return _continue
    if name == "TRACE":
        return _trace
    if name == "REJECT":
        return _reject(opts)
    if name in ("DNAT", "SNAT", "MASQUERADE", "REDIRECT"):
        return _nat(name, opts, rule)
    label = "CT " + " ".join(sorted(opts)) if name == "CT" else name
    return _unknown(rule, label, unknown)
