"""Chain names follow kube-proxy's hash recipe (literals from upstream tests and real nodes)."""

from __future__ import annotations

import pytest

from kplab.errors import InputError
from kplab.kubeproxy.names import (
    Version,
    ext_chain,
    fw_chain,
    parse_version,
    sep_chain,
    service_port_name,
    svc_chain,
    svl_chain,
    xlb_chain,
)


@pytest.mark.parametrize(
    ("spn", "proto", "chain"),
    [
        ("ns1/svc1:p80", "tcp", "KUBE-SVC-XPGD46QRK7WJZT7O"),
        ("default/kubernetes:https", "tcp", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
        ("kube-system/kube-dns:dns", "udp", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
        ("kube-system/kube-dns:dns-tcp", "tcp", "KUBE-SVC-ERIFXISQEP7F7OF4"),
        ("kube-system/kube-dns:metrics", "tcp", "KUBE-SVC-JD5MR3NA4I4DYORP"),
        ("ns4/svc4:p80", "tcp", "KUBE-SVC-4SW47YFZTEDKD3PK"),
        ("ns5/svc5:p80", "tcp", "KUBE-SVC-NUKIZ6OKUXPJNT4C"),
    ],
)
def test_service_chain_literals(spn: str, proto: str, chain: str) -> None:
    assert svc_chain(spn, proto) == chain


def test_all_service_level_chains_share_one_hash() -> None:
    suffix = "NUKIZ6OKUXPJNT4C"
    assert fw_chain("ns5/svc5:p80", "tcp") == "KUBE-FW-" + suffix
    assert ext_chain("ns5/svc5:p80", "tcp") == "KUBE-EXT-" + suffix
    assert svl_chain("ns5/svc5:p80", "tcp") == "KUBE-SVL-" + suffix
    assert xlb_chain("ns5/svc5:p80", "tcp") == "KUBE-XLB-" + suffix


@pytest.mark.parametrize(
    ("endpoint", "chain"),
    [
        ("10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
        ("10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
        ("10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ],
)
def test_endpoint_chain_literals(endpoint: str, chain: str) -> None:
    spn = "ns1/svc1:p80" if endpoint == "10.180.0.1:80" else "ns4/svc4:p80"
    assert sep_chain(spn, "tcp", endpoint) == chain


def test_protocol_changes_the_hash() -> None:
    assert svc_chain("ns1/svc1:p80", "tcp") != svc_chain("ns1/svc1:p80", "udp")


def test_unnamed_port_keeps_the_colon_only_in_the_old_era() -> None:
    assert service_port_name("ns1", "svc1", "", Version.CURRENT) == "ns1/svc1"
    assert service_port_name("ns1", "svc1", "", Version.V1_15) == "ns1/svc1:"
    assert service_port_name("ns1", "svc1", "p", Version.V1_14) == "ns1/svc1:p"
    # so the chains differ between eras for the same unnamed port
    assert svc_chain("ns1/svc1", "tcp") != svc_chain("ns1/svc1:", "tcp")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.14", Version.V1_14),
        ("v1.15.3", Version.V1_15),
        ("current", Version.CURRENT),
        ("CURRENT", Version.CURRENT),
    ],
)
def test_parse_version(text: str, version: Version) -> None:
    assert parse_version(text) is version


@pytest.mark.parametrize("text", ["1.16", "1.1", "latest", "1.150", ""])
def test_unknown_version_is_bad_input(text: str) -> None:
    with pytest.raises(InputError, match="unknown version"):
        parse_version(text)
