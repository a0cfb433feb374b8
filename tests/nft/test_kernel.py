"""The real nft as the oracle of the readers: a ruleset loaded with `nft -f` in a lab namespace and
listed back as text and as JSON reads to the same model as the file loaded (and as the copies in
tests/data/nft, which is how they were made)."""

from __future__ import annotations

import pytest

from kplab.lab.netns import Lab
from kplab.netfilter.nft.load import parse_nft, read_nft

from .helpers import OVERALL, canonical


@pytest.mark.kernel
def test_nft_listings_read_to_the_loaded_model(lab: Lab) -> None:
    ns = lab.netns("nftread")
    ns.run(["nft", "-f", "-"], input=OVERALL["nft"].read_text())
    text = ns.run(["nft", "list", "ruleset"]).stdout
    as_json = ns.run(["nft", "-j", "list", "ruleset"]).stdout
    want = canonical(read_nft(str(OVERALL["nft"])))
    assert canonical(parse_nft(text, "listed.nft")) == want
    assert canonical(parse_nft(as_json, "listed.json")) == want
    assert canonical(read_nft(str(OVERALL["json"]))) == want
