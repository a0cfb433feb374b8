"""The upstream packet-flow tables (traces*.yaml of the manifests-only fixtures) pass with kplab's
generated `current` rules under the stateless tracer (kplab.netfilter.stateless), through the
library and through `kplab trace --manifests`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kplab.cli import cli
from kplab.kubeproxy import generate
from kplab.netfilter.stateless import trace_stateless

from .fixtures import DATA, Case, cases
from .test_load import run_cli

MANIFEST_ONLY = {
    "cluster_ip_general", "etp_cluster", "etp_local", "internal_external_masquerade",
    "internal_traffic_policy", "load_balancer", "no_endpoints_reject", "nodeports",
}  # fmt: skip
TRACED = [c for c in cases() if c.folder in MANIFEST_ONLY and c.file("traces", "yaml") is not None]


def traces(case: Case) -> list[dict[str, Any]]:
    path = case.file("traces", "yaml")
    assert path is not None
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def test_all_manifest_only_fixtures_are_traced() -> None:
    assert {c.folder for c in TRACED} == MANIFEST_ONLY
    assert sum(len(traces(c)) for c in TRACED) >= 190


@pytest.mark.parametrize("case", TRACED, ids=lambda c: c.id)
def test_packet_flow_table(case: Case) -> None:
    cluster, config, env = case.load()
    ruleset = generate(cluster, config=config, env=env, full_node=True).ruleset()
    node_ips = [a for kind, a in cluster.nodes[0].addresses if kind != "Hostname"]
    failures = []
    for t in traces(case):
        result = trace_stateless(ruleset, t["src"], t.get("proto", "tcp"), t["dst"], t["dport"], node_ips)
        got = [b.dnat or b.verdict for b in result.outcomes]
        if got != t["expect"] or result.masquerade != t["masquerade"]:
            failures.append(
                f"{t['name']}: got {got} masquerade={result.masquerade}, want {t['expect']} {t['masquerade']}"
            )
    assert not failures


@pytest.mark.parametrize("case", [c for c in TRACED if not c.name], ids=lambda c: c.folder)
def test_kplab_trace_accepts_manifests(case: Case) -> None:
    files = [case.file("services", "yaml"), DATA / case.folder / "node.yaml", case.file("kube-proxy", "yaml")]
    args = [arg for path in files for arg in ("--manifests", str(path))]
    first = traces(case)[0]
    probe = [
        "-p",
        first.get("proto", "tcp"),
        "--src",
        first["src"],
        "--dst",
        f"{first['dst']}:{first['dport']}",
    ]
    result = CliRunner().invoke(cli, ["trace", *args, "--stateless", "-o", "json", *probe])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [o["dnat"] or o["verdict"] for o in out["outcomes"]] == first["expect"]
    assert out["masquerade"] is first["masquerade"]


def test_kplab_trace_manifests_bad_input_is_one_line(tmp_path: Any) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("kind: Service\nmetadata: {name: a}\nspec: {ports: [{port: x}]}\n")
    proc = run_cli(["trace", "--manifests", str(path), "--src", "1.1.1.1", "--dst", "2.2.2.2:80"])
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"kplab: {path}:doc 1: spec.ports[0].port: expected an integer, got a string 'x'"
    ]
