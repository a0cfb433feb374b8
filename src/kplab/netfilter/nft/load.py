"""Read an nftables dump: `nft list ruleset` text, `nft -f` input, or `nft -j list ruleset` JSON
(told apart by the first character), parsed and compiled."""

from __future__ import annotations

from kplab.netfilter.nft.compile import NftEngine, compile_nft
from kplab.netfilter.nft.jsonin import parse_json
from kplab.netfilter.nft.model import NftRuleset
from kplab.netfilter.nft.text import parse_text
from kplab.untrusted import read_text


def parse_nft(text: str, file: str) -> NftRuleset:
    """Text or JSON, whichever `text` is."""
    if text.lstrip().startswith("{"):
        return parse_json(text, file)
    return parse_text(text, file)


def read_nft(path: str) -> NftRuleset:
    return parse_nft(read_text(path), path)


def load_nft(path: str, *, unknown: str = "error") -> NftEngine:
    return compile_nft(read_nft(path), unknown=unknown)
