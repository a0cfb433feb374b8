"""Behaviours of current kube-proxy beyond what the upstream fixtures pin down, one at a time."""

from __future__ import annotations

from dataclasses import replace

from click.testing import CliRunner

from kplab.cli import cli
from kplab.kubeproxy import Cluster, KubeProxyConfig, NodeEnv, Version, generate
from kplab.kubeproxy.names import sep_chain, svc_chain
from kplab.kubeproxy.objects import EndpointSlice, Node, Service, ServicePort, SliceEndpoint, SlicePort

NODE = Node(
    "node-a", (("InternalIP", "192.168.1.10"),), ("10.1.2.0/24",), (("topology.kubernetes.io/zone", "z1"),)
)
CIDR = KubeProxyConfig(cluster_cidr="10.0.0.0/8")


def svc(name: str = "web", **kw: object) -> Service:
    fields: dict[str, object] = {"cluster_ips": ("172.30.0.1",), "ports": (ServicePort("http", "TCP", 80),)}
    fields.update(kw)
    return Service("ns", name, **fields)  # type: ignore[arg-type]


def eps(*endpoints: SliceEndpoint, name: str = "web", proto: str = "TCP") -> EndpointSlice:
    return EndpointSlice("ns", f"{name}-1", name, "IPv4", endpoints, (SlicePort("http", proto, 8080),))


def ep(ip: str, **kw: object) -> SliceEndpoint:
    return SliceEndpoint((ip,), **kw)  # type: ignore[arg-type]


def rules(*objects: object, config: KubeProxyConfig = CIDR, env: NodeEnv | None = None, **kw: object) -> str:
    cluster = Cluster(nodes=[NODE])
    for obj in objects:
        {Service: cluster.services, EndpointSlice: cluster.slices}[type(obj)].append(obj)  # type: ignore[attr-defined]
    return generate(cluster, config=config, env=env, **kw).restore_text  # type: ignore[arg-type]


def test_large_cluster_mode_starts_above_1000_endpoints() -> None:
    def text(n: int) -> str:
        return rules(
            svc(), eps(*(ep(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(1, n + 1)))
        )

    at_threshold, above = text(1000), text(1001)
    assert '--comment "ns/web:http -> 10.0.0.1:8080"' in at_threshold
    assert "-> 10.0.0.1:8080" not in above and "--comment ns/web:http" not in above
    assert f"-A {sep_chain('ns/web:http', 'tcp', '10.0.0.1:8080')} -s 10.0.0.1 -j KUBE-MARK-MASQ" in above
    assert '"ns/web:http cluster IP"' in above  # only SVC->SEP and SEP comments go


def test_local_traffic_detectors() -> None:
    node_cidr = rules(svc(), eps(ep("10.1.2.3")), config=replace(CIDR, detect_local_mode="NodeCIDR"))
    assert "--dport 80 ! -s 10.1.2.0/24 -j KUBE-MARK-MASQ" in node_cidr
    bridge = rules(
        svc(),
        eps(ep("10.1.2.3")),
        config=replace(CIDR, detect_local_mode="BridgeInterface", bridge_interface="cbr0"),
    )
    assert "--dport 80 ! -i cbr0 -j KUBE-MARK-MASQ" in bridge
    prefix = KubeProxyConfig(detect_local_mode="InterfaceNamePrefix", interface_name_prefix="veth")
    local = svc(type="LoadBalancer", external_traffic_policy="Local", lb_ingress_ips=("1.2.3.4",))
    text = rules(local, eps(ep("10.1.2.3", node_name="node-a")), config=prefix)
    assert '"pod traffic for ns/web:http external destinations" -i veth+ -j KUBE-SVC-' in text
    none = rules(svc(), eps(ep("10.1.2.3")), config=KubeProxyConfig())
    svc_rules = [
        line for line in none.splitlines() if line.startswith("-A " + svc_chain("ns/web:http", "tcp"))
    ]
    assert len(svc_rules) == 1 and "KUBE-MARK-MASQ" not in svc_rules[0]  # no detector: no masquerade rule


def test_masquerade_all_and_random_fully() -> None:
    text = rules(
        svc(),
        eps(ep("10.1.2.3")),
        config=replace(CIDR, masquerade_all=True),
        env=NodeEnv(has_random_fully=True),
    )
    assert (
        '--comment "ns/web:http cluster IP" -m tcp -p tcp -d 172.30.0.1 --dport 80 -j KUBE-MARK-MASQ' in text
    )
    assert "-j MASQUERADE --random-fully" in text


def test_sctp_and_udp_ports() -> None:
    text = rules(
        svc(ports=(ServicePort("http", "SCTP", 80),)),
        eps(ep("10.1.2.3"), proto="SCTP"),
        svc("dns", ports=(ServicePort("dns", "UDP", 53),)),
    )
    assert "-m sctp -p sctp -d 172.30.0.1 --dport 80 -j " + svc_chain("ns/web:http", "sctp") in text
    assert "-m sctp -p sctp -j DNAT --to-destination 10.1.2.3:8080" in text
    assert '"ns/dns:dns has no endpoints" -m udp -p udp -d 172.30.0.1 --dport 53 -j REJECT' in text


def test_services_kube_proxy_does_not_program() -> None:
    text = rules(
        svc("ext", type="ExternalName"),
        svc("headless", cluster_ips=("None",)),
        svc("v6only", cluster_ips=("fd00::1",)),
    )
    assert "ns/ext" not in text and "ns/headless" not in text and "ns/v6only" not in text


def test_proxy_mode_ingress_and_other_family_addresses_are_ignored() -> None:
    lb = svc(type="LoadBalancer", lb_ingress_ips=("1.2.3.4", "fd00::9"), external_ips=("fd00::8", "5.6.7.8"))
    text = rules(lb, eps(ep("10.1.2.3"), ep("fd00::3")))
    assert "-d 1.2.3.4 --dport 80" in text and "-d 5.6.7.8 --dport 80" in text and "fd00" not in text


def test_terminating_endpoints_are_a_fallback() -> None:
    terminating = ep("10.1.2.3", ready=False, serving=True, terminating=True)
    gone = ep("10.1.2.4", ready=False, serving=False, terminating=True)
    text = rules(svc(), eps(terminating, gone))
    assert "--to-destination 10.1.2.3:8080" in text and "10.1.2.4" not in text
    mixed = rules(svc(), eps(terminating, ep("10.1.2.5")))
    assert "10.1.2.3" not in mixed and "--to-destination 10.1.2.5:8080" in mixed


def test_zone_hints_select_same_zone_endpoints() -> None:
    text = rules(
        svc(), eps(ep("10.1.2.3", zone_hints=frozenset({"z1"})), ep("10.1.2.4", zone_hints=frozenset({"z2"})))
    )
    assert "10.1.2.3:8080" in text and "10.1.2.4" not in text
    partial = rules(svc(), eps(ep("10.1.2.3", zone_hints=frozenset({"z1"})), ep("10.1.2.4")))
    assert "10.1.2.4:8080" in partial  # a ready endpoint without hints: hints ignored


def test_endpoints_sorted_as_strings_and_deduplicated() -> None:
    text = rules(svc(), eps(ep("10.1.2.30"), ep("10.1.2.4"), ep("10.1.2.30")))
    order = [line.split("-> ")[1].split('"')[0] for line in text.splitlines() if "-> " in line]
    assert order == ["10.1.2.30:8080", "10.1.2.4:8080"]


def test_affinity_with_local_policy_chain() -> None:
    local = svc(
        type="NodePort",
        ports=(ServicePort("http", "TCP", 80, 30080),),
        external_traffic_policy="Local",
        session_affinity="ClientIP",
        affinity_timeout_s=300,
    )
    text = rules(local, eps(ep("10.1.2.3", node_name="node-a"), ep("10.1.2.4", node_name="node-b")))
    svl = "KUBE-SVL-" + svc_chain("ns/web:http", "tcp").removeprefix("KUBE-SVC-")
    sep = sep_chain("ns/web:http", "tcp", "10.1.2.3:8080")
    assert (
        f'-A {svl} -m comment --comment "ns/web:http -> 10.1.2.3:8080" -m recent --name {sep} '
        f"--rcheck --seconds 300 --reap -j {sep}" in text
    )
    assert f"-A {svl} " in text and '10.1.2.4:8080" -m recent' in text  # KUBE-SVC still balances both


def test_nodeport_addresses_and_localhost() -> None:
    text = rules(svc(), config=replace(CIDR, localhost_node_ports=False))
    assert (
        "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS" in text
        and "KUBE-FIREWALL" not in text
    )
    env = NodeEnv(interfaces=(("lo", ("127.0.0.1/8",)), ("eth0", ("192.168.1.10/24", "10.9.9.9/32"))))
    text = rules(svc(), config=replace(CIDR, node_port_addresses=("192.168.1.0/24", "127.0.0.0/8")), env=env)
    assert "-d 192.168.1.10 -j KUBE-NODEPORTS" in text and "-d 127.0.0.1 -j KUBE-NODEPORTS" in text
    assert "10.9.9.9" not in text and "KUBE-FIREWALL" in text
    primary = rules(svc(), config=replace(CIDR, node_port_addresses=("primary",)), env=env)
    assert "-d 192.168.1.10 -j KUBE-NODEPORTS" in primary and "KUBE-FIREWALL" not in primary


def test_be_liberal_from_config_env_or_flag() -> None:
    invalid = "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
    assert invalid in rules(svc())
    assert invalid not in rules(svc(), config=replace(CIDR, tcp_be_liberal=True))
    assert invalid not in rules(svc(), sysctls={"net.netfilter.nf_conntrack_tcp_be_liberal": 1})
    # v1.15 predates the be_liberal check (PR #120412, v1.29): the rule stays
    assert invalid in rules(
        svc(), version=Version.V1_15, sysctls={"net.netfilter.nf_conntrack_tcp_be_liberal": 1}
    )
    assert invalid not in rules(svc(), version=Version.V1_14)


def test_cli_formats_full_node_and_sysctl(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "m.yaml"
    path.write_text(
        "kind: Service\nmetadata: {name: web}\n"
        "spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}\n"
    )
    run = CliRunner()
    save = run.invoke(cli, ["rules", "-f", str(path), "--format", "save", "--full-node"]).output
    assert save.startswith("*mangle\n") and "-j REJECT --reject-with icmp-port-unreachable" in save
    inputs = [line for line in save.splitlines() if line.startswith("-A INPUT")]
    assert [line.rsplit(" ", 1)[1] for line in inputs] == [
        "KUBE-FIREWALL",
        "KUBE-PROXY-FIREWALL",
        "KUBE-NODEPORTS",
        "KUBE-EXTERNAL-SERVICES",
    ]
    restore = run.invoke(
        cli, ["rules", "-f", str(path), "--sysctl", "net.netfilter.nf_conntrack_tcp_be_liberal=1"]
    )
    assert restore.exit_code == 0 and "INVALID" not in restore.output
    legacy = run.invoke(
        cli, ["rules", "-f", str(path), "--kube-proxy-version", "v1.15.3", "--full-node"]
    ).output
    assert '-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets"' in legacy
    inputs = [line.rsplit(" ", 1)[1] for line in legacy.splitlines() if line.startswith("-A INPUT")]
    assert inputs == ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL"]  # kubelet's jump came first
