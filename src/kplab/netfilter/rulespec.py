"""Parse the words of one rule (everything after `-A CHAIN`) into matches and a target.

Options are attributed as iptables attributes them: an option belongs to the latest `-m` module
that knows it (a module kplab does not know accepts any option), options after `-j` go to the
target first (an unknown target takes them all), and `-p tcp --dport 80` loads the protocol's
match implicitly, as iptables does (iptables-save then prints `-p tcp -m tcp --dport 80`).
Strict mode gives each known option exactly its number of words, so an unquoted multi-word comment
is a `Bad argument`, as in iptables-restore; lenient mode lets an option take every following word
that is not an option.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kplab.netfilter.model import Match, Option, Target
from kplab.netfilter.optspec import IMPLICIT, MATCH_OPTIONS, PROTOCOL_MODULES, TARGET_OPTIONS
from kplab.netfilter.tokenize import BLANKS, Word


class SpecError(ValueError):
    """What is wrong with a rule's words (the caller adds `file:line:`)."""


@dataclass(slots=True)
class _Slot:
    """A match or target under construction: its options, and its option table (None = unknown)."""

    name: str
    known: dict[str, int] | None
    options: list[Option] = field(default_factory=list)


@dataclass(slots=True)
class RuleSpec:
    matches: tuple[Match, ...]
    target: Target | None
    counters: tuple[int, int] | None


def _is_option(word: Word) -> bool:
    return not word.quoted and len(word.text) > 1 and word.text.startswith("-")


def _is_bang(word: Word) -> bool:
    return not word.quoted and word.text == "!"


def _name(word: Word, what: str) -> str:
    """A match, target or chain name: one plain word."""
    text = word.text
    if not text or (word.quoted and any(ch in BLANKS or ch == '"' for ch in text)) or not text.isprintable():
        raise SpecError(f"invalid {what} name '{text}'")
    return text


def _parse_count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 20:  # counters are 64-bit
        raise SpecError(f"bad counter value '{text[:40]}'")
    return int(text)


class _SpecParser:
    def __init__(self, words: list[Word], lenient: bool) -> None:
        self.words = words
        self.pos = 0
        self.lenient = lenient
        self.implicit = _Slot("", dict(IMPLICIT))
        self.modules: list[_Slot] = []
        self.target: _Slot | None = None
        self.goto = False
        self.counters: tuple[int, int] | None = None
        self.last: tuple[_Slot, int] | None = None  # the option that stray words join (lenient)

    def next_word(self, what: str) -> Word:
        if self.pos >= len(self.words):
            raise SpecError(f"option '{what}' requires an argument")
        word = self.words[self.pos]
        self.pos += 1
        return word

    def run(self) -> RuleSpec:
        negate = False
        while self.pos < len(self.words):
            word = self.words[self.pos]
            self.pos += 1
            if _is_bang(word):
                if negate:
                    raise SpecError("multiple '!' flags not allowed")
                negate = True
            elif not _is_option(word):
                self.stray(word)
            else:
                self.option(word.text, negate)
                negate = False
        if negate:
            raise SpecError("'!' at the end of the rule negates nothing")
        return self.result()

    def stray(self, word: Word) -> None:
        if self.lenient and self.last is not None:
            slot, index = self.last
            opt = slot.options[index]
            slot.options[index] = Option(
                opt.name, (*opt.values, word.text), opt.negated, (*opt.quoted, word.quoted)
            )
            return
        raise SpecError(f"Bad argument '{word.text}'")

    def option(self, name: str, negate: bool) -> None:
        if name in ("-m", "--match"):
            self.no_negation(name, negate)
            module = _name(self.next_word(name), "match")
            self.modules.append(_Slot(module, MATCH_OPTIONS.get(module)))
            self.last = None
        elif name in ("-j", "--jump", "-g", "--goto"):
            self.no_negation(name, negate)
            self.set_target(_name(self.next_word(name), "target"), goto=name in ("-g", "--goto"))
        elif name in ("-c", "--set-counters"):
            self.no_negation(name, negate)
            packets = _parse_count(self.next_word(name).text)
            self.counters = (packets, _parse_count(self.next_word(name).text))
        else:
            slot, arity = self.owner(name)
            self.add_option(slot, name, arity, negate)

    @staticmethod
    def no_negation(name: str, negate: bool) -> None:
        if negate:
            raise SpecError(f"'!' cannot negate '{name}'")

    def set_target(self, name: str, goto: bool) -> None:
        if self.target is not None:
            raise SpecError("multiple -j/-g targets")
        self.target = _Slot(name, TARGET_OPTIONS.get(name))
        self.goto = goto
        self.last = None

    def owner(self, name: str) -> tuple[_Slot, int | None]:
        """The match or target that takes option `name`, and how many words it takes."""
        if name in IMPLICIT:
            return self.implicit, IMPLICIT[name]
        if self.target is not None:
            if self.target.known is None:
                return self.target, None
            if name in self.target.known:
                return self.target, self.target.known[name]
        for slot in reversed(self.modules):
            if slot.known is None:
                return slot, None
            if name in slot.known:
                return slot, slot.known[name]
        proto = self.protocol()
        if proto in PROTOCOL_MODULES and name in MATCH_OPTIONS[proto]:
            slot = _Slot(proto, MATCH_OPTIONS[proto])
            self.modules.append(slot)
            return slot, MATCH_OPTIONS[proto][name]
        where = f"target '{self.target.name}'" if self.target is not None else "the rule's matches"
        raise SpecError(f"unknown option '{name}' (not an option of {where})")

    def protocol(self) -> str | None:
        for opt in self.implicit.options:
            if opt.name in ("-p", "--protocol") and not opt.negated:
                return opt.value.lower()
        return None

    def add_option(self, slot: _Slot, name: str, arity: int | None, negate: bool) -> None:
        if arity and self.pos < len(self.words) and _is_bang(self.words[self.pos]):
            # The old intrapositioned form `--ctstate ! NEW`.
            self.no_negation(name, negate)
            negate = True
            self.pos += 1
        taken: list[Word] = [self.next_word(name) for _ in range(arity or 0)]
        if arity is None or self.lenient:
            while self.pos < len(self.words):
                word = self.words[self.pos]
                if _is_option(word) or _is_bang(word):
                    break
                taken.append(word)
                self.pos += 1
        slot.options.append(
            Option(name, tuple(w.text for w in taken), negate, tuple(w.quoted for w in taken))
        )
        self.last = (slot, len(slot.options) - 1)

    def result(self) -> RuleSpec:
        matches = [Match(slot.name, tuple(slot.options)) for slot in self.modules]
        if self.implicit.options:
            matches.insert(0, Match("", tuple(self.implicit.options)))
        target = None
        if self.target is not None:
            target = Target(self.target.name, tuple(self.target.options), self.goto)
        return RuleSpec(tuple(matches), target, self.counters)


def parse_rule_words(words: list[Word], *, lenient: bool) -> RuleSpec:
    """Matches, target and `-c` counters of a rule; raises SpecError (message without location).

    A target kplab does not know (a user chain, or an extension) takes the options after it.
    """
    return _SpecParser(words, lenient).run()
