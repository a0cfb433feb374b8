"""nftables mode: the name recipe, the 1.33 layout, dual-stack tables, the table model's refusals
and `kplab rules --proxy-mode nftables`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kplab.kubeproxy.nftmode.api import generate_nft
from kplab.kubeproxy.nftmode.names import NftVersion, endpoint_base, hash_and_truncate, service_base
from kplab.kubeproxy.nftmode.table import Table, Transaction, TransactionError
from kplab.kubeproxy.objects import NodeEnv

from .fixtures import NFT_DATA, Case
from .test_load import run_cli

OVERALL = Case("overall_current", "", NFT_DATA)


def test_names_are_upstreams_literals() -> None:
    assert service_base("ns1", "svc1", "tcp", "p80") == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert (
        endpoint_base("ns1", "svc1", "tcp", "p80", "10.180.0.1", 80)
        == "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    )
    assert service_base("testing", "service", "tcp", "http") == "P4ZYZVCF-testing/service/tcp/http"
    six = endpoint_base("testing", "service", "tcp", "http", "fd80:abcd:12::a1b2:c3d4:e5f6:9999", 80)
    assert six == "U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80"


def test_long_names_are_cut_to_240_characters() -> None:
    name = "n" * 63 + "/" + "s" * 63 + "/tcp/" + "p" * 63 + "__1234:5678:9abc:def0::abcd:1234/65535"
    cut = hash_and_truncate(name)
    assert len(cut) == 240 and cut.endswith("...") and cut[8] == "-"
    assert hash_and_truncate("a/b/tcp/") == hash_and_truncate("a/b/tcp/")[:8] + "-a/b/tcp/"


def test_1_33_layout() -> None:
    cluster, config, env = OVERALL.load()
    text = generate_nft(cluster, config=config, env=env, version=NftVersion.V1_33).text
    assert (
        "add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }" in text
    )
    assert "add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }" in text
    assert "pre-dnat" not in text
    assert "add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check" in text
    assert "add rule ip kube-proxy filter-output ct state new jump firewall-check" in text
    # before PR #131492 the off-cluster masquerade rule matched the port
    rule = "service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump"
    assert rule in text


def test_dual_stack_node_gets_both_tables_with_their_own_families() -> None:
    cluster, config, env = OVERALL.load()
    generated = generate_nft(cluster, config=config, env=replace(env, ip_family=None))
    assert [t.family for t in generated.tables] == ["ip", "ip6"]
    six = [line for line in generated.lines() if " ip6 kube-proxy " in line]
    assert "add element ip6 kube-proxy nodeport-ips { 2001:db8::1 }" in six
    assert any("ip6 daddr { fd00:10:96::/112 } drop" in line for line in six)
    assert not any("172.30." in line for line in six)  # the IPv4-only Services are not in it


def test_without_service_cidrs_there_is_no_unallocated_drop() -> None:
    cluster, config, env = OVERALL.load()
    cluster.service_cidrs.clear()
    assert "unallocated" not in generate_nft(cluster, config=config, env=env).text


def test_match_all_nodeports_delete_the_nodeport_set() -> None:
    cluster, config, env = OVERALL.load()
    config = replace(config, node_port_addresses=("0.0.0.0/0",))
    text = generate_nft(cluster, config=config, env=env).text
    assert "nodeport-ips" not in text
    assert "services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap" in text


def test_default_nodeport_addresses_are_the_primary_ip() -> None:
    cluster, config, env = OVERALL.load()
    text = generate_nft(cluster, config=replace(config, node_port_addresses=()), env=env).text
    assert [line for line in text.splitlines() if "element ip kube-proxy nodeport-ips" in line] == [
        "add element ip kube-proxy nodeport-ips { 192.168.0.2 }"
    ]


def test_table_refuses_what_the_kernel_refuses_and_changes_nothing() -> None:
    table = Table("ip")
    tx = Transaction("ip")
    tx.add("table", "", '{ comment "rules for kube-proxy" ; }')
    tx.add("chain", "a")
    table.apply(tx)
    for bad in (
        lambda t: t.rule("a", "goto nowhere"),
        lambda t: t.rule("missing", "drop"),
        lambda t: t.delete("element", "a", "1.2.3.4"),
    ):
        tx = Transaction("ip")
        tx.add("chain", "b")
        bad(tx)
        with pytest.raises(TransactionError):
            table.apply(tx)
        assert set(table.objects) == {"a"}


def _rules(*args: str) -> tuple[int, str, str]:
    proc = run_cli(["rules", *args])
    return proc.returncode, proc.stdout, proc.stderr


def _inputs() -> list[str]:
    d = NFT_DATA / "overall_current"
    return ["-f", str(d / "services.yaml"), "-f", str(d / "node.yaml"), "--env", str(d / "env.yaml")]


def test_cli_mode_from_the_config_and_nft_by_default() -> None:
    config = str(NFT_DATA / "overall_current" / "kube-proxy.yaml")
    code, out, _ = _rules(*_inputs(), "--config", config)
    assert code == 0 and out == (NFT_DATA / "overall_current" / "expected.nft").read_text()
    code, out, _ = _rules(*_inputs(), "--config", config, "--format", "json")
    assert code == 0 and json.loads(out)["nftables"][1] == {"table": {"family": "ip", "name": "kube-proxy"}}


def test_cli_proxy_mode_flag_and_bad_combinations(tmp_path: Path) -> None:
    code, out, _ = _rules(*_inputs(), "--proxy-mode", "nftables", "--kube-proxy-version", "1.33")
    assert code == 0 and "filter-output-post-dnat" in out
    for args, message in (
        (("--proxy-mode", "nftables", "--format", "save"), "--format save: iptables mode only"),
        (("--proxy-mode", "iptables", "--format", "json"), "--format json: nftables mode only"),
        (("--proxy-mode", "nftables", "--kube-proxy-version", "1.15"), "unknown version '1.15' for nftables"),
        (("--proxy-mode", "nftables", "--full-node"), "--full-node: iptables mode only"),
    ):
        code, _, err = _rules(*_inputs(), *args)
        assert code == 2 and err.startswith("kplab: ") and message in err and "Traceback" not in err
    bad = tmp_path / "cidr.yaml"
    bad.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: x}\nspec:\n  cidrs: [nope]\n"
    )
    code, _, err = _rules("-f", str(bad), "--proxy-mode", "nftables")
    assert code == 2 and f"{bad}:doc 1: spec.cidrs[0]: 'nope' is not a CIDR" in err


def test_iptables_mode_is_unchanged_by_service_cidrs() -> None:
    code, out, _ = _rules(*_inputs(), "--proxy-mode", "iptables")
    assert code == 0 and out.startswith("*filter") and "172.30.0.0/16" not in out
    assert NodeEnv().ip_family is None
