"""The four line buffers kube-proxy fills (filter chains/rules, nat chains/rules) and the
iptables-restore text it assembles from them, byte for byte, each rule remembering its origin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kplab.kubeproxy.objects import GENERATED, Origin

Words = Iterable[str]


def q(text: str) -> str:
    """A comment as kube-proxy writes one that holds spaces: in double quotes."""
    return f'"{text}"'


def chain_line(name: str) -> str:
    """`utiliptables.MakeChainLine`."""
    return f":{name} - [0:0]"


@dataclass(slots=True)
class Buffer:
    """Lines and, in a parallel list, their origins (no per-line tuples: less work for the GC)."""

    texts: list[str] = field(default_factory=list)
    origins: list[Origin] = field(default_factory=list)

    def write(self, words: Words, origin: Origin = GENERATED) -> None:
        self.texts.append(" ".join(words))
        self.origins.append(origin)

    def line(self, text: str, origin: Origin = GENERATED) -> None:
        """A line already joined (the hot paths format it directly)."""
        self.texts.append(text)
        self.origins.append(origin)

    def extend(self, other: Buffer) -> None:
        self.texts.extend(other.texts)
        self.origins.extend(other.origins)


@dataclass(slots=True)
class RestoreWriter:
    """kube-proxy's filterChains/filterRules/natChains/natRules `LineBuffer`s."""

    filter_chains: Buffer = field(default_factory=Buffer)
    filter_rules: Buffer = field(default_factory=Buffer)
    nat_chains: Buffer = field(default_factory=Buffer)
    nat_rules: Buffer = field(default_factory=Buffer)

    def chains(self, table: str) -> Buffer:
        return self.filter_chains if table == "filter" else self.nat_chains

    def rules(self, table: str) -> Buffer:
        return self.filter_rules if table == "filter" else self.nat_rules

    def lines(self) -> Buffer:
        """`*filter`, chains, rules, `COMMIT`, then the same for nat."""
        out = Buffer()
        for table, chains, rules in (
            ("filter", self.filter_chains, self.filter_rules),
            ("nat", self.nat_chains, self.nat_rules),
        ):
            out.line(f"*{table}")
            out.extend(chains)
            out.extend(rules)
            out.line("COMMIT")
        return out


class Discard(Buffer):
    """`proxyutil.NewDiscardLineBuffer`: what a partial sync computes and throws away."""

    def write(self, words: Words, origin: Origin = GENERATED) -> None:
        pass

    def line(self, text: str, origin: Origin = GENERATED) -> None:
        pass


@dataclass(slots=True)
class ServiceSink:
    """Where one service port's own chains go: the real buffers, or discard ones (partial sync)."""

    nat_chains: Buffer
    nat_rules: Buffer
    active: set[str]

    def chain(self, name: str) -> None:
        self.nat_chains.line(f":{name} - [0:0]")
        self.active.add(name)
