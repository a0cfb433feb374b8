"""The emulated cluster end to end: flows complete with the right addresses on every captured hop,
the books balance, and runs are deterministic (same seed, same JSON and pcapng bytes)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from kplab.net.run import run
from kplab.scenario.load import parse
from kplab.scenario.schema import Scenario

BASE = """
name: flows
seed: 5
duration: 5s
kernel: "6.1"
kube_proxy_version: current
nodes:
  - {name: node-a, ip: 172.16.0.1, pod_cidr: 10.0.0.0/24}
  - {name: node-b, ip: 172.16.0.2, pod_cidr: 10.0.1.0/24}
pods:
  - {name: client-1, node: node-a, ip: 10.0.0.2, labels: {role: client}}
  - {name: server-1, node: node-b, ip: 10.0.1.2, labels: {app: server}}
externals:
  - {name: internet, ip: 203.0.113.10, labels: {app: outside}}
services:
  - {name: server, cluster_ip: 192.168.0.2, port: 80, target_port: 8080, selector: {app: server}}
links:
  fabric: {rate: 1Gbit, delay: 100us, queue: 200}
workload:
  service: default/server
  server_selector: {app: server}
  client_selector: {role: client}
  file_size: 200kB
  parallel: 2
  downloads: 1
  start_spread: 5ms
"""


def scenario(**changes: object) -> Scenario:
    return replace(parse(BASE, "flows.yaml"), **changes)  # type: ignore[arg-type]


def hops(pcap: Path) -> set[tuple[str, str, str, str, str]]:
    """(interface, src ip, src port, dst ip, dst port) of every TCP packet in a capture."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark is needed to read captures (make test installs it)"
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.interface_name", "-e", "ip.src", "-e",
         "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    complaints = [line for line in out.stderr.splitlines() if "Running as user" not in line]
    assert not complaints, complaints  # the capture opens with no warnings
    return {tuple(line.split("\t")) for line in out.stdout.splitlines() if line}  # type: ignore[misc]


def endpoints(found: set[tuple[str, str, str, str, str]], iface: str) -> set[tuple[str, str]]:
    """The (src ip, dst ip) pairs seen on one interface."""
    return {(h[1], h[3]) for h in found if h[0] == iface}


def test_pod_to_service_is_dnatted_and_reverse_natted(tmp_path: Path) -> None:
    _, result = run(scenario(), pcap_dir=tmp_path)
    assert result["outcomes"] == {"completed": 2}
    a, b = hops(tmp_path / "node-a.pcapng"), hops(tmp_path / "node-b.pcapng")
    # The client only ever talks to the VIP; the wire between nodes only carries pod addresses.
    assert endpoints(a, "node-a:veth-client-1") == {("10.0.0.2", "192.168.0.2"), ("192.168.0.2", "10.0.0.2")}
    assert endpoints(a, "node-a:eth0") == {("10.0.0.2", "10.0.1.2"), ("10.0.1.2", "10.0.0.2")}
    assert endpoints(b, "node-b:veth-server-1") == {("10.0.0.2", "10.0.1.2"), ("10.0.1.2", "10.0.0.2")}
    assert {h[4] for h in a if h[0] == "node-a:eth0" and h[3] == "10.0.1.2"} == {"8080"}
    assert result["nodes"]["node-a"]["unnated_escapes"] == 0


def test_pod_to_pod_has_no_nat(tmp_path: Path) -> None:
    s = scenario()
    _, result = run(replace(s, workload=replace(s.workload, target="pod")), pcap_dir=tmp_path)
    assert result["outcomes"] == {"completed": 2}
    a = hops(tmp_path / "node-a.pcapng")
    pairs = {("10.0.0.2", "10.0.1.2"), ("10.0.1.2", "10.0.0.2")}
    assert endpoints(a, "node-a:veth-client-1") == pairs
    assert endpoints(a, "node-a:eth0") == pairs


def test_pod_to_external_is_masqueraded(tmp_path: Path) -> None:
    s = scenario()
    w = replace(s.workload, target="pod", server_selector={"app": "outside"})
    _, result = run(replace(s, workload=w), pcap_dir=tmp_path)
    assert result["outcomes"] == {"completed": 2}
    a = hops(tmp_path / "node-a.pcapng")
    assert endpoints(a, "node-a:veth-client-1") == {
        ("10.0.0.2", "203.0.113.10"),
        ("203.0.113.10", "10.0.0.2"),
    }
    # On the wire the pod is hidden behind the node's own address (MASQUERADE), and restored inside.
    assert endpoints(a, "node-a:eth0") == {("172.16.0.1", "203.0.113.10"), ("203.0.113.10", "172.16.0.1")}


def test_books_balance_under_loss_duplication_and_reordering() -> None:
    s = scenario(seed=9)
    lossy = replace(s.fabric_link, faults=replace(s.fabric_link.faults, loss=0.01, duplicate=0.01,
                                                  slow_share=0.01, slow_delay_ns=2_000_000))  # fmt: skip
    _, result = run(replace(s, fabric_link=lossy, duration_ns=2_000_000_000))
    b = result["books"]
    assert b["balanced"], b
    assert b["dropped"] > 0 and b["duplicated"] > 0
    assert sum(result["links"]["node-a-fabric"]["drops"].values()) > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_same_seed_same_json_and_pcapng(tmp_path: Path, seed: int) -> None:
    s = scenario(seed=seed)
    _, first = run(s, pcap_dir=tmp_path / "1")
    _, second = run(s, pcap_dir=tmp_path / "2")
    first.pop("wall_seconds")
    second.pop("wall_seconds")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    for name in ("node-a.pcapng", "node-b.pcapng"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


@pytest.mark.parametrize("version", ["1.14", "current"])
def test_service_without_endpoints_is_refused(version: str) -> None:
    """kube-proxy REJECTs a Service with no endpoints; the node answers ICMP port unreachable and the
    client's connect() fails at once with ECONNREFUSED (Linux's tcp_v4_err for a SYN_SENT socket)."""
    s = scenario(kube_proxy_version=version)
    empty = replace(s.services[0], selector={"app": "nobody"})
    cluster, result = run(replace(s, services=(empty,)))
    assert result["outcomes"] == {"refused": 2}
    assert all(c["end_s"] is not None and c["end_s"] < 0.1 for c in result["connections"])
    drops = result["nodes"]["node-a"]["drops"]
    assert sum(n for reason, n in drops.items() if "REJECT" in reason) == 2, drops
    assert cluster.pods["client-1"].tcp.counters.get("TcpAttemptFails") == 2
