"""`kplab trace` on real nodes' dumps (tests/data/nodes): reasons, stated defaults, the node's
interfaces and routes, ipset membership and `iptables -S` output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from kplab.cli import cli
from kplab.errors import InputError

from .helpers import DATA

NODES = DATA / "nodes"
FLANNEL = ["--rules", str(NODES / "kubeadm-flannel.save")]
FLANNEL_NET = ["--ip-addr", str(NODES / "kubeadm-flannel.ip-addr.json"),
               "--ip-route", str(NODES / "kubeadm-flannel.ip-route.json")]  # fmt: skip
WEAVE = ["--rules", str(NODES / "weave.save"), "--ip-addr", str(NODES / "weave.ip-addr.txt"),
         "--ip-route", str(NODES / "weave.ip-route.txt")]  # fmt: skip


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["trace", *args])
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    """The one-line message `kplab` prints (exit 2) for bad input."""
    result = CliRunner().invoke(cli, ["trace", *args])
    assert isinstance(result.exception, InputError), result.output
    message = str(result.exception)
    assert "\n" not in message
    return message


def trace(*args: str) -> dict[str, Any]:
    return json.loads(run(*args, "-o", "json"))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("rules", "src", "dst", "iface"),
    [
        (NODES / "kubeadm-flannel.save", "10.244.1.5", "10.96.0.1:443", "cni0"),
        (NODES / "weave.save", "10.40.0.1", "10.96.0.1:443", "weave"),
        (NODES / "kind.save", "10.244.1.3", "10.96.0.1:443", "veth2b7d1c4e"),
    ],
    ids=["flannel", "weave", "kind"],
)
def test_pod_to_clusterip_without_node_ip_is_masqueraded_to_a_stated_default(
    rules: object, src: str, dst: str, iface: str
) -> None:
    """flannel's, Weave's and kind's MASQUERADE out of the assumed interface used to DROP silently."""
    out = trace("--rules", str(rules), "--src", src, "--dst", dst, "--in-iface", iface,
                "--unknown", "never-match")  # fmt: skip
    assert out["verdict"] == "ACCEPT" and out["masquerade"] is True
    assert out["snat"].startswith("192.0.2.1:")
    assert out["reason"] == "accepted: forwarded out of eth0"
    assert any("192.0.2.1" in w and "--node-ip" in w for w in out["warnings"])


def test_every_stop_has_a_reason_in_json_and_text() -> None:
    args = [
        *FLANNEL,
        *FLANNEL_NET,
        "--src",
        "192.168.100.50",
        "--dst",
        "10.244.2.7:8080",
        "--in-iface",
        "virbr0",
    ]
    out = trace(*args)
    assert out["verdict"] == "REJECT"
    assert out["reason"].startswith("REJECT at FORWARD: rule filter:LIBVIRT_FWO:rule:2 (")
    assert "kubeadm-flannel.save:" in out["reason"] and out["outcomes"][0]["reason"] == out["reason"]
    assert f"reason: {out['reason']}" in run(*args).splitlines()
    policy = trace(*FLANNEL, "--node-ip", "192.168.56.11", "--src", "192.168.56.1", "--dst", "8.8.8.8:53")
    assert policy["verdict"] == "DROP"
    assert policy["reason"] == "DROP at FORWARD: policy DROP of built-in chain filter:FORWARD"


def test_nodeport_to_an_address_not_known_as_local_names_node_ip() -> None:
    out = trace(*FLANNEL, "--src", "192.168.56.1", "--dst", "192.168.56.11:30080")
    assert out["dnat"] is None
    (warning,) = [w for w in out["warnings"] if "NodePort" in w]
    assert (
        "tcp port 30080" in warning
        and "--node-ip 192.168.56.11" in warning
        and "kubeadm-flannel.save:" in warning
    )
    assert f"warning: {warning}" in run(*FLANNEL, "--src", "192.168.56.1", "--dst", "192.168.56.11:30080")
    known = trace(
        *FLANNEL, "--node-ip", "192.168.56.11", "--src", "192.168.56.1", "--dst", "192.168.56.11:30080"
    )
    assert known["dnat"] in ("10.244.1.5:8080", "10.244.2.7:8080")
    assert not [w for w in known["warnings"] if "NodePort" in w]


def test_ip_addr_and_ip_route_choose_the_out_interface_and_masquerade_address() -> None:
    pod_to_pod = trace(
        *FLANNEL, *FLANNEL_NET, "--src", "10.244.1.5", "--dst", "10.244.2.7:8080", "--in-iface", "cni0"
    )
    assert pod_to_pod["reason"] == "accepted: forwarded out of flannel.1" and pod_to_pod["snat"] is None
    local = trace(
        *FLANNEL, *FLANNEL_NET, "--src", "10.244.2.7", "--dst", "10.244.1.5:8080", "--in-iface", "flannel.1"
    )
    assert local["reason"] == "accepted: forwarded out of cni0"
    api = trace(*FLANNEL, *FLANNEL_NET, "--src", "10.244.1.5", "--dst", "10.96.0.1:443", "--in-iface", "cni0")
    assert api["snat"] == "192.168.56.11:40000" and api["reason"] == "accepted: forwarded out of enp0s8"
    assert not any("192.0.2.1" in w for w in api["warnings"])
    weave = trace(*WEAVE, "--ipset-save", str(NODES / "weave.ipset"), "--src", "10.40.0.1", "--dst",
                  "10.96.0.1:443", "--in-iface", "weave")  # fmt: skip
    assert weave["snat"] == "172.31.4.21:40000" and weave["reason"] == "accepted: forwarded out of ens5"
    assert weave["warnings"] == []


def test_ipset_membership_decides_set_matches() -> None:
    ipsets = ["--ipset-save", str(NODES / "weave.ipset")]
    host = ["--src", "172.31.9.9", "--in-iface", "ens5"]
    dns = trace(*WEAVE, *ipsets, *host, "--dst", "10.40.0.2:53", "-p", "udp")  # kube-system's set holds it
    assert dns["verdict"] == "ACCEPT" and dns["masquerade"] is False
    weave_chain = [p["rule"] for p in dns["path"] if p["chain"] == "WEAVE"]
    assert len(weave_chain) == 1 and weave_chain[0].startswith(
        "-A WEAVE -m set --match-set weaver-no-masq-local dst"
    )
    assert weave_chain[0].endswith("-j RETURN")  # no SNAT to a local container
    unknown_pod = trace(*WEAVE, *ipsets, *host, "--dst", "10.40.0.9:8080")  # in no namespace's set
    assert unknown_pod["verdict"] == "DROP" and unknown_pod["reason"].startswith(
        "DROP at FORWARD: rule filter:FORWARD:rule:4 ("
    )
    no_sets = fails(*WEAVE, "--src", "10.40.0.1", "--dst", "10.96.0.1:443", "--in-iface", "weave")
    assert "--ipset-save" in no_sets and "weave.save:55:" in no_sets
    for policy, taken in (("never-match", "not matching"), ("always-match", "matching")):
        out = trace(
            *WEAVE, "--unknown", policy, "--src", "10.40.0.1", "--dst", "10.96.0.1:443", "--in-iface", "weave"
        )
        (warning,) = [w for w in out["warnings"] if "ipset" in w]
        assert "weaver-no-masq-local" in warning and f"taken as {taken} (--unknown {policy})" in warning
    always = trace(*WEAVE, "--unknown", "always-match", "--src", "10.40.0.1", "--dst", "10.96.0.1:443",
                   "--in-iface", "weave")  # fmt: skip
    assert always["masquerade"] is False  # "Prevent SNAT to locally running containers" returned first


def test_ipvs_node_with_ipset_save() -> None:
    base = ["--rules", str(NODES / "ipvs.save"), "--node-ip", "192.168.10.21", "--src", "10.244.3.4"]
    sets = ["--ipset-save", str(NODES / "ipvs.ipset")]
    out = trace(*base, *sets, "--dst", "10.96.0.10:53", "-p", "udp", "--in-iface", "cni0")
    hit = [p["rule"] for p in out["path"] if p["table"] == "nat" and "KUBE-CLUSTER-IP" in p["rule"]]
    assert hit == ["-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT"]
    assert any("IPVS mode" in w and "ipvs.save:" in w for w in out["warnings"])
    nodeport = trace(*base, *sets, "--dst", "192.168.10.99:30080")
    (warning,) = [w for w in nodeport["warnings"] if "NodePort" in w]
    assert "ipvs.ipset: set KUBE-NODE-PORT-TCP" in warning and "--node-ip 192.168.10.99" in warning
    assert not [w for w in trace(*base, *sets, "--dst", "192.168.10.99:30081")["warnings"] if "NodePort" in w]
    missing = trace(*base, *sets, "--dst", "10.96.0.99:53", "-p", "udp", "--in-iface", "cni0")
    assert not [p for p in missing["path"] if "KUBE-CLUSTER-IP dst,dst -j ACCEPT" in p["rule"]]


def test_calico_ipset_mode_masquerades_pod_to_internet() -> None:
    base = ["--rules", str(NODES / "calico.save"), "--ipset-save", str(NODES / "calico.ipset"),
            "--node-ip", "10.128.0.7", "--in-iface", "cali1a2b3c4d5e6"]  # fmt: skip
    out = trace(*base, "--src", "192.168.45.3", "--dst", "93.184.216.34:443")
    assert out["masquerade"] is True and out["snat"] == "10.128.0.7:40000"
    assert trace(*base, "--src", "192.168.45.3", "--dst", "192.168.12.9:443")["masquerade"] is False


def test_k3s_dump_with_counters() -> None:
    out = trace("--rules", str(NODES / "k3s.save"), "--node-ip", "10.0.0.31", "--src", "10.42.0.9",
                "--dst", "10.43.0.10:53", "-p", "udp", "--in-iface", "cni0")  # fmt: skip
    assert out["dnat"] == "10.42.0.4:53" and out["verdict"] == "ACCEPT"


def test_iptables_s_output_is_accepted_one_table_per_command() -> None:
    rules = ["--rules", str(NODES / "eks.iptables-S.txt")]
    out = trace(
        *rules, "--node-ip", "192.168.27.143", "--src", "203.0.113.9", "--dst", "192.168.27.143:31380"
    )
    assert out["dnat"] == "192.168.30.17:8080" and out["masquerade"] is True
    assert any(p["chain"] == "KUBE-FORWARD" for p in out["path"])  # the filter table of `iptables -S`
    pod = trace(*rules, "--node-ip", "192.168.27.143", "--src", "192.168.30.17", "--dst", "10.100.0.10:53",
                "-p", "udp", "--in-iface", "eni3a9c1f2b7de")  # fmt: skip
    assert pod["dnat"] == "192.168.12.244:53"


def test_manifests_without_cluster_ip_trace_with_the_allocation_said() -> None:
    manifests = str(NODES / "handwritten-services.yaml")
    first = trace("--manifests", manifests, "--src", "10.244.2.2", "--dst", "10.96.0.42:443")
    (note,) = [w for w in first["warnings"] if "default/my-service: no spec.clusterIP" in w]
    vip = note.split("allocated ")[1].split()[0]
    out = trace("--manifests", manifests, "--src", "10.244.2.2", "--dst", f"{vip}:80")
    assert out["dnat"] == "10.244.1.7:9376"
    assert any("shop/db: skipped: headless" in w for w in out["warnings"])


def test_without_in_iface_the_packet_arrives_on_the_default_routes_interface() -> None:
    args = [*FLANNEL, *FLANNEL_NET, "--src", "203.0.113.5", "--dst", "192.168.56.11:30080"]
    out = trace(*args, "--all-branches")  # enp0s8's address is local: the NodePort is reached
    assert "no --in-iface: the packet is taken to arrive on enp0s3 (the default route's)" in out["warnings"]
    assert [(o["dnat"], o["reason"]) for o in out["outcomes"]] == [
        ("10.244.1.5:8080", "accepted: forwarded out of cni0"),
        ("10.244.2.7:8080", "accepted: forwarded out of flannel.1"),
    ]
    remote = trace(
        *args,
        "--seed",
        next(str(s) for s in range(50) if trace(*args, "--seed", str(s))["dnat"] == "10.244.2.7:8080"),
    )
    assert remote["snat"] == "10.244.1.0:40000"  # KUBE-MARK-MASQ, out of flannel.1: its own address


def test_each_branch_says_its_reason_in_text() -> None:
    text = run(*FLANNEL, *FLANNEL_NET, "--src", "10.244.1.9", "--dst", "10.104.12.7:80", "--in-iface", "cni0",
               "--all-branches")  # fmt: skip
    branches = [line for line in text.splitlines() if line.startswith("  p=")]
    assert [line.split("reason: ")[1] for line in branches] == [
        "accepted: forwarded out of cni0",
        "accepted: forwarded out of flannel.1",
    ]
