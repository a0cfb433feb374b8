"""`kplab rules` on hand-written manifests: Services without spec.clusterIP get one from
--service-cidr (deterministic from namespace/name); only what kube-proxy skips is skipped, each with
a line saying why."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from kplab.errors import InputError
from kplab.kubeproxy.allocate import allocate_cluster_ips
from kplab.kubeproxy.load import load_manifests
from kplab_cli import run_main as kplab

MANIFESTS = str(Path(__file__).resolve().parent.parent / "data" / "nodes" / "handwritten-services.yaml")


def allocated(err: str) -> dict[str, str]:
    out = {}
    for line in err.splitlines():
        if "no spec.clusterIP: allocated" in line:
            name = line.split("Service ")[1].split(":")[0]
            out[name] = line.split("allocated ")[1].split()[0]
    return out


def test_services_without_cluster_ip_get_one_and_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kplab(capsys, "rules", "-f", MANIFESTS)
    assert code == 0
    ips = allocated(err)
    assert set(ips) == {"default/my-service", "shop/web"}
    for addr in ips.values():
        assert ipaddress.ip_address(addr) in ipaddress.ip_network("10.96.0.0/12")
        assert f"-d {addr} --dport 80" in out
    assert "-d 10.96.0.42 --dport 443" in out  # an explicit clusterIP is kept
    assert "--dport 30007" in out  # the NodePort Service is complete
    lines = err.splitlines()
    assert any("shop/db: skipped: headless (clusterIP: None)" in line for line in lines)
    assert any("prod/my-database: skipped: type ExternalName" in line for line in lines)
    assert all(line.startswith("kplab: note: ") for line in lines)
    again = allocated(kplab(capsys, "rules", "-f", MANIFESTS)[2])
    assert again == ips  # deterministic


def test_service_cidr_is_where_addresses_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = kplab(capsys, "rules", "-f", MANIFESTS, "--service-cidr", "172.20.0.0/16")
    assert code == 0
    for addr in allocated(err).values():
        assert ipaddress.ip_address(addr) in ipaddress.ip_network("172.20.0.0/16") and addr in out
    code, _, err = kplab(capsys, "rules", "-f", MANIFESTS, "--service-cidr", "10.96.0.0/33")
    assert code == 2 and err.startswith("kplab: --service-cidr:") and err.count("\n") == 1


def test_allocation_avoids_taken_and_reserved_addresses() -> None:
    cluster = load_manifests([MANIFESTS])
    notes = allocate_cluster_ips(cluster, "10.0.0.0/28")
    ips = [svc.cluster_ips[0] for svc in cluster.services if svc.cluster_ips and svc.cluster_ips[0] != "None"]
    assert len(set(ips)) == len(ips) and len(notes) == 4
    small = [a for a in ips if a.startswith("10.0.0.")]
    assert all(2 <= int(a.rsplit(".", 1)[1]) <= 14 for a in small)  # not .0, .1 (kubernetes) or .15
    full = load_manifests([MANIFESTS])
    with pytest.raises(InputError, match="no free address"):
        for _ in range(7):
            full.services += full.services[:2]
        allocate_cluster_ips(full, "10.0.0.0/28")
