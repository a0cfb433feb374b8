"""The iptables-save canonicalisation, rule by rule (the kernel test checks it end to end)."""

from __future__ import annotations

import pytest

from kplab.kubeproxy.savefmt import save_text, strip_save_noise
from kplab.kubeproxy.savematch import parse_rule, render_rule, save_string, split_words, stored_probability


@pytest.mark.parametrize(
    ("restore", "save"),
    [
        (
            '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 '
            "--dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
            "-A KUBE-SERVICES ! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment --comment"
            ' "ns1/svc1:p80 cluster IP"'
            " -m tcp --dport 80 -j KUBE-MARK-MASQ",
        ),
        ("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000", "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"),
        (
            "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
            "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        ),
        (
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x00004000/0x00004000",
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        ),
        (
            "-A KUBE-SEP-X -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-X --set -m tcp -p tcp "
            "-j DNAT --to-destination 10.180.0.3:80",
            '-A KUBE-SEP-X -p tcp -m comment --comment "ns5/svc5:p80" -m recent --set --name KUBE-SEP-X '
            "--mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.180.0.3:80",
        ),
        (
            "-A KUBE-SVC-X -m recent --name KUBE-SEP-X --rcheck --seconds 10800 --reap -j KUBE-SEP-X",
            "-A KUBE-SVC-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-X --mask"
            " 255.255.255.255 "
            "--rsource -j KUBE-SEP-X",
        ),
        (
            "-A KUBE-SVC-X -m statistic --mode random --probability 0.33333 -j KUBE-SEP-X",
            "-A KUBE-SVC-X -m statistic --mode random --probability 0.33332999982 -j KUBE-SEP-X",
        ),
        (
            '-A KUBE-SERVICES -m comment --comment "x has no endpoints" -m udp -p udp -d 1.2.3.4/32'
            " --dport 53 -j REJECT",
            '-A KUBE-SERVICES -d 1.2.3.4/32 -p udp -m comment --comment "x has no endpoints" -m udp'
            " --dport 53 "
            "-j REJECT --reject-with icmp-port-unreachable",
        ),
        (
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name"
            " ct_state_invalid_dropped_pkts -j DROP",
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name "
            " ct_state_invalid_dropped_pkts -j DROP",
        ),
        (
            '-A KUBE-FW-X -m comment --comment "other traffic"',
            '-A KUBE-FW-X -m comment --comment "other traffic"',
        ),
        ("-A KUBE-X -m comment --comment plain -j ACCEPT", "-A KUBE-X -m comment --comment plain -j ACCEPT"),
        (
            "-A KUBE-EXT-X -m comment --comment pod -i cni+ -j KUBE-SVC-X",
            "-A KUBE-EXT-X -i cni+ -m comment --comment pod -j KUBE-SVC-X",
        ),
    ],
)
def test_rule_as_iptables_save_prints_it(restore: str, save: str) -> None:
    assert render_rule(parse_rule(restore)) == save


@pytest.mark.parametrize(
    ("given", "printed"),
    [
        ("0.5000000000", "0.50000000000"),
        ("0.3333333333", "0.33333333349"),
        ("0.2", "0.20000000019"),
        ("0.50000", "0.50000000000"),
        ("0.0000099999", "0.00001000008"),
        ("0.1428571429", "0.14285714272"),
        ("0.00100", "0.00100000016"),
    ],  # all three read back from the kernel
)
def test_probability_as_the_kernel_stores_it(given: str, printed: str) -> None:
    assert stored_probability(given) == printed


def test_save_string_quotes_only_when_needed() -> None:
    assert save_string("abc_D-9") == " abc_D-9"
    assert save_string("ns/a:b") == ' "ns/a:b"'
    assert save_string('say "hi"') == ' "say \\"hi\\""'
    assert save_string("") == ' ""'


def test_split_words_keeps_quoted_runs_together() -> None:
    assert split_words('-A X -m comment --comment "a b" -j Y') == [
        "-A",
        "X",
        "-m",
        "comment",
        "--comment",
        "a b",
        "-j",
        "Y",
    ]
    assert split_words('--comment ""') == ["--comment", ""]


def test_tables_chains_and_rules_in_save_order() -> None:
    restore = (
        "*nat\n:KUBE-Z - [0:0]\n:KUBE-A - [0:0]\n-A KUBE-Z -j KUBE-A\n-A POSTROUTING -j KUBE-Z\nCOMMIT\n"
        "*filter\n:KUBE-F - [0:0]\nCOMMIT\n*mangle\n:KUBE-PROXY-CANARY - [0:0]\nCOMMIT\n"
    )
    assert save_text(restore).splitlines() == [
        "*mangle",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-PROXY-CANARY - [0:0]",
        "COMMIT",
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":KUBE-F - [0:0]",
        "COMMIT",
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-A - [0:0]",
        ":KUBE-Z - [0:0]",
        "-A POSTROUTING -j KUBE-Z",
        "-A KUBE-Z -j KUBE-A",
        "COMMIT",
    ]


def test_strip_save_noise_drops_comments_and_counters() -> None:
    real = "# Generated by x\n*nat\n:PREROUTING ACCEPT [12:720]\n-A PREROUTING -j X\nCOMMIT\n# Completed\n"
    assert strip_save_noise(real) == ["*nat", ":PREROUTING ACCEPT [0:0]", "-A PREROUTING -j X", "COMMIT"]
