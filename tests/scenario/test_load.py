from dataclasses import replace

import pytest

from kplab.errors import InputError
from kplab.scenario.load import builtin, builtin_text, parse
from kplab.scenario.units import duration_ns, rate_bps, size_bytes


def test_builtin_seed_is_valid() -> None:
    s = builtin()
    assert s.kernel == "5.4" and s.kube_proxy_version == "1.14"
    assert s.fabric_link.faults.slow_delay_ns == 300_000_000
    assert len(s.pods_matching(s.workload.server_selector)) >= 2


def test_units() -> None:
    assert rate_bps("1Gbit") == 10**9
    assert size_bytes("1MiB") == 2**20
    assert duration_ns("250us") == 250_000
    with pytest.raises(ValueError):
        rate_bps("fast")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("parallel: 2", "parallel: two", "workload.parallel: expected an integer"),
        ("rate: 100Mbit", "rate: 100Mbt", "links.fabric.rate: expected a rate"),
        ("start_spread: 100ms", "start_spred: 100ms", "workload.start_spred: unknown key"),
        (
            "node: node-a, ip: 10.0.0.2",
            "node: node-z, ip: 10.0.0.2",
            "pod client-1 is on unknown node node-z",
        ),
        ("ip: 10.0.0.3", "ip: 10.0.0.300", "pods[1].ip: not an IPv4 address"),
        ('kernel: "5.4"', 'kernel: "4.4"', "kernel: expected one of"),
        ("nf_conntrack_tcp_loose: 1", "nf_conntrack_tcp_lose: 1", "sysctls: unknown conntrack sysctl"),
    ],
)
def test_errors_name_file_and_line(old: str, new: str, expected: str) -> None:
    text = builtin_text()
    assert old in text
    bad = text.replace(old, new, 1)
    line = next(i for i, text_line in enumerate(bad.splitlines(), 1) if new in text_line)
    with pytest.raises(InputError) as info:
        parse(bad, "s.yaml")
    message = str(info.value)
    assert expected in message
    assert message.startswith("s.yaml:")
    reported = int(message.split(":")[1])
    assert abs(reported - line) <= 3, message


def test_yaml_syntax_error() -> None:
    with pytest.raises(InputError, match=r"^s.yaml:2: invalid YAML"):
        parse("name: x\n  - : [\n", "s.yaml")


def test_kube_proxy_mode_and_its_versions() -> None:
    text = builtin_text().replace('kube_proxy_version: "1.14"', "kube_proxy_mode: nftables", 1)
    s = parse(text, "s.yaml")
    assert (s.kube_proxy_mode, s.kube_proxy_version) == ("nftables", "current")
    assert not s.operator_drop_invalid
    s = parse(text + "operator_drop_invalid: true\n", "s.yaml")
    assert s.operator_drop_invalid
    for bad, message in (
        ("kube_proxy_mode: ipvs", "kube_proxy_mode: expected one of"),
        ('kube_proxy_mode: nftables\nkube_proxy_version: "1.15"', "kube_proxy_version: expected one of 1.33"),
    ):
        with pytest.raises(InputError, match=message):
            parse(builtin_text().replace('kube_proxy_version: "1.14"', bad, 1), "s.yaml")


def test_with_proxy_mode_keeps_a_version_the_mode_has() -> None:
    from dataclasses import replace

    from kplab.scenario.schema import with_proxy_mode

    seed = builtin()
    assert with_proxy_mode(seed, "nftables").kube_proxy_version == "current"
    v133 = replace(seed, kube_proxy_version="1.33")
    assert with_proxy_mode(v133, "nftables").kube_proxy_version == "1.33"
    assert with_proxy_mode(v133, "iptables").kube_proxy_version == "current"
    assert with_proxy_mode(seed, "iptables") == seed


def test_emulated_nodes_in_nftables_mode_hold_kube_proxys_table_and_iptables_only_the_cni_rule() -> None:
    from kplab.net.cluster import build
    from kplab.scenario.schema import with_proxy_mode

    cluster = build(with_proxy_mode(builtin(), "nftables"))
    for node in cluster.nodes.values():
        assert node.nft is not None
        names = {(c.table, c.name) for c in node.base_chains()}
        assert ("ip kube-proxy", "nat-prerouting") in names and ("ip kube-proxy", "filter-forward") in names
        assert not any(c.table == "filter" for c in node.base_chains())  # no KUBE-FORWARD etc.
        assert ("ip operator", "forward") not in names
    dropping = build(replace(with_proxy_mode(builtin(), "nftables"), operator_drop_invalid=True))
    assert all(
        ("ip operator", "forward") in {(c.table, c.name) for c in n.base_chains()}
        for n in dropping.nodes.values()
    )
