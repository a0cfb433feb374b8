"""Manifest loading and `kplab rules` bad input: one line `file:doc N: ...`, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kplab.cli import cli, main
from kplab.errors import InputError
from kplab.kubeproxy import Version, generate, load_manifest_text

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80}]
"""


def run_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from kplab.cli import main; sys.argv = ['kplab', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: eighty}]}\n",
            "doc 1: spec.ports[0].port: expected an integer, got a string 'eighty'",
        ),
        (
            "kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80, protocol: ICMP}]}\n",
            "doc 1: spec.ports[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP",
        ),
        (SERVICE + "---\nkind: Service\nmetadata: {namespace: x}\n", "doc 2: metadata.name: is required"),
        (
            SERVICE + "---\nkind: Service\nmetadata: {name: b}\nspec: {clusterIP: 10.0.0.300}\n",
            "doc 2: spec.clusterIPs[0]: '10.0.0.300' is not an IP address",
        ),
        (
            "kind: Service\nmetadata: {name: a}\nspec: {ports: {port: 80}}\n",
            "doc 1: spec.ports: expected a list, got a mapping",
        ),
        ("kind: Service\nmetadata: [a]\n", "doc 1: metadata: expected a mapping, got a list"),
        (SERVICE + "---\nkind: Service\n  metadata: : :\n", "doc 2: malformed YAML"),
        (
            "kind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: web}}\n"
            "endpoints: [{addresses: [10.0.0.1], conditions: {ready: 'yes'}}]\n",
            "doc 1: endpoints[0].conditions.ready: expected true or false, got a string 'yes'",
        ),
        (
            '{"kind": "List", "items": [{"kind": "Service", "metadata": {"name": "a"}, "spec":'
            ' {"type": "Foo"}}]}',
            "doc 1 items[0]: spec.type: 'Foo' is not one of",
        ),
        ('{"kind": "Service", ', "not JSON"),
    ],
)
def test_bad_manifest_is_one_located_line_exit_2(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    proc = run_cli(["rules", "-f", str(path)])
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"kplab: {path}:") and message in lines[0]


def test_unknown_version_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(SERVICE)
    proc = run_cli(["rules", "-f", str(path), "--kube-proxy-version", "1.16"])
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "kplab: --kube-proxy-version: unknown version '1.16' (known: 1.14, 1.15, current)"
    )


def test_bad_sysctl_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(SERVICE)
    proc = run_cli(["rules", "-f", str(path), "--sysctl", "net.netfilter.nf_conntrack_tcp_be_liberal"])
    assert proc.returncode == 2 and "--sysctl: expected KEY=INTEGER" in proc.stderr


def test_service_without_endpoints_is_reject_not_error() -> None:
    cluster = load_manifest_text(SERVICE, "m.yaml")
    text = generate(cluster).restore_text
    assert (
        '-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" -m tcp -p tcp '
        "-d 10.96.0.10 --dport 80 -j REJECT" in text
    )
    assert "KUBE-SVC-" not in text


def test_unknown_kinds_are_skipped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(SERVICE + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    result = CliRunner().invoke(cli, ["rules", "-f", str(path)])
    assert result.exit_code == 0
    assert f"kplab: note: {path}:doc 2: skipped kind 'Deployment'" in result.stderr
    assert result.stdout.startswith("*filter\n")


def test_endpoints_objects_are_ignored_by_current_with_a_note() -> None:
    eps = (
        "---\nkind: Endpoints\nmetadata: {name: web}\n"
        "subsets: [{addresses: [{ip: 10.1.1.1}], ports: [{name: http, port: 8080}]}]\n"
    )
    cluster = load_manifest_text(SERVICE + eps, "m.yaml")
    current = generate(cluster)
    assert "has no endpoints" in current.restore_text
    assert any("Endpoints default/web ignored" in n for n in current.notes)
    legacy = generate(cluster, version=Version.V1_15)
    assert "--to-destination 10.1.1.1:8080" in legacy.restore_text


def test_sources_point_at_the_service_document() -> None:
    cluster = load_manifest_text("# comment\n---\n" + SERVICE, "m.yaml")
    rules = generate(cluster)
    pairs = list(zip(rules.lines, rules.origins, strict=True))
    origins = {str(o) for line, o in pairs if "default/web" in line}
    assert origins == {"m.yaml:doc 1"}
    assert {o.line for line, o in pairs if "default/web" in line} == {3}


def test_main_is_importable_for_the_console_script() -> None:
    assert callable(main)


def test_input_error_has_exit_code_2() -> None:
    assert InputError.exit_code == 2


def test_ruleset_rules_carry_their_manifest_line() -> None:
    eps = (
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\n"
        "endpoints: [{addresses: [10.1.1.1]}]\nports: [{name: http, port: 8080}]\n"
    )
    ruleset = generate(load_manifest_text("# header\n---\n" + SERVICE + eps, "m.yaml")).ruleset()
    nat = ruleset.tables["nat"]
    svc_chain = next(name for name in nat.chains if name.startswith("KUBE-SVC-"))
    assert {str(rule.source) for rule in nat.chains[svc_chain].rules} == {"m.yaml:3"}
    postrouting = nat.chains["KUBE-POSTROUTING"].rules[0]
    assert postrouting.source.file == "<generated>" and postrouting.source.line > 0


def test_two_kube_proxy_configurations_are_bad_input() -> None:
    config = "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
    cluster = load_manifest_text(SERVICE + config + config, "m.yaml")
    with pytest.raises(InputError, match=r"^m.yaml:doc 3: a second KubeProxyConfiguration"):
        generate(cluster)


def test_unknown_node_name_is_noted() -> None:
    node = (
        "---\nkind: Node\nmetadata: {name: a}\nstatus: {addresses: [{type: InternalIP, address: 10.0.0.1}]}\n"
    )
    cluster = load_manifest_text(SERVICE + node, "m.yaml")
    assert any("Node 'b' is not among the manifests" in n for n in generate(cluster, node_name="b").notes)
    assert not generate(cluster, node_name="a").notes


def test_several_nodes_need_a_choice() -> None:
    nodes = "".join(f"---\nkind: Node\nmetadata: {{name: {n}}}\n" for n in ("a", "b"))
    cluster = load_manifest_text(SERVICE + nodes, "m.yaml")
    with pytest.raises(InputError, match=r"several Nodes \(a, b\): say which one with --node"):
        generate(cluster)
