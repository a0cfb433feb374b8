"""A hand-written v1.14/v1.15 cluster (tests/data/kube-proxy-own/legacy): golden restore inputs,
and the traits of that era checked one by one so a regression names what broke."""

from __future__ import annotations

import pytest

from kplab.kubeproxy import Version, generate, load_config, load_manifests
from kplab.kubeproxy.canon import check_jumps
from kplab.kubeproxy.names import sep_chain, svc_chain

from .test_kernel import OWN


def legacy(version: Version) -> str:
    config, _ = load_config(str(OWN / "kube-proxy.yaml"))
    cluster = load_manifests([str(OWN / "services.yaml"), str(OWN / "node.yaml")])
    return generate(cluster, config=config, version=version).restore_text


@pytest.mark.parametrize("version", [Version.V1_14, Version.V1_15], ids=lambda v: v.value)
def test_golden(version: Version) -> None:
    assert legacy(version) == (OWN / f"expected.{version.value}.rules").read_text()


def test_only_the_invalid_drop_differs_between_1_14_and_1_15() -> None:
    old, new = legacy(Version.V1_14).splitlines(), legacy(Version.V1_15).splitlines()
    assert [line for line in new if line not in old] == [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
    ]
    assert len(new) == len(old) + 1


def test_era_traits() -> None:
    text = legacy(Version.V1_15)
    web = svc_chain("default/web:http", "tcp")
    seps = [sep_chain("default/web:http", "tcp", f"10.244.{n}:8080") for n in ("1.2", "2.3", "3.4")]
    # three endpoints, %0.5f probabilities, affinity checks first, no comments on SVC->SEP / SEP rules
    assert f"-A {web} -m statistic --mode random --probability 0.33333 -j {seps[0]}" in text
    assert f"-A {web} -m statistic --mode random --probability 0.50000 -j {seps[1]}" in text
    assert f"-A {web} -j {seps[2]}" in text
    rcheck = [line for line in text.splitlines() if line.startswith(f"-A {web} -m recent")]
    assert len(rcheck) == 3 and all("--rcheck --seconds 600 --reap" in line for line in rcheck)
    assert (
        f"-A {seps[0]} -m recent --name {seps[0]} --set -m tcp -p tcp -j DNAT --to-destination"
        f" 10.244.1.2:8080" in text
    )
    # masquerade era: --set-xmark, cluster-IP masquerade in KUBE-SERVICES, /32
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x00004000/0x00004000" in text
    assert (
        '--comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 ! -s'
        " 10.244.0.0/16 -j KUBE-MARK-MASQ" in text
    )
    # NodePort: masquerade then jump; the service without endpoints is REJECTed on both paths
    assert (
        "-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j"
        " KUBE-MARK-MASQ" in text
    )
    assert (
        '"default/empty:https has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport'
        " 30443 -j REJECT" in text
    )
    # unnamed port: the old ServicePortName keeps the colon
    assert '"default/dns: cluster IP" -m udp -p udp' in text and svc_chain("default/dns:", "udp") in text
    # eTP Local: KUBE-XLB with the local endpoint only, KUBE-FW ends in KUBE-MARK-DROP
    assert '"Balancing rule 0 for kube-system/lb:web" -j' in text
    assert "KUBE-MARK-DROP" in text
    # jumps land on declared chains except kubelet's KUBE-MARK-DROP (not part of the restore input)
    assert [p for p in check_jumps(text) if "not created" in p] == [
        "nat: KUBE-FW-7EGI77QLELFRS3U2 jumps to KUBE-MARK-DROP, which is not created"
    ]


def test_current_reads_the_same_cluster_differently() -> None:
    """Current kube-proxy ignores Endpoints: every service is REJECTed (it needs EndpointSlices)."""
    text = legacy(Version.CURRENT)
    assert text.count("has no endpoints") >= 4 and "KUBE-SEP-" not in text
