"""The grid file: axes reach the scenario through the scenario loader; bad grids are `file:line`
errors (exit 2) before anything runs; run keys; the Wilson interval."""

from __future__ import annotations

import math
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from kplab.errors import InputError
from kplab.scenario.load import builtin, parse
from kplab.sweep.aggregate import wilson
from kplab.sweep.grid import cells, load_grid, parse_grid
from kplab.sweep.overrides import apply
from kplab.sweep.runs import code_identity, run_key
from kplab_cli import run_main as run_cli

from .helpers import GRID, KPLAB, write_grid


def test_cells_carry_the_values_in_grid_order(tmp_path: Path) -> None:
    grid = load_grid(str(write_grid(tmp_path)))
    got = cells(grid)
    assert len(got) == 8 and grid.seeds == (1, 2, 3)
    assert [list(c.params) for c in got] == [["links.fabric.faults.slow_share", "kernel", "variant"]] * 8
    assert [c.params["variant"] for c in got[:2]] == ["as_is", "drop_invalid"]  # last axis fastest
    for c in got:
        assert c.scenario.fabric_link.faults.slow_share == c.params["links.fabric.faults.slow_share"]
        assert c.scenario.kernel == c.params["kernel"] and c.variant == c.params["variant"]
        # everything else is the built-in scenario's
        assert c.scenario.workload == builtin("small").workload
        assert (
            c.scenario.fabric_link.faults.slow_delay_ns == builtin("small").fabric_link.faults.slow_delay_ns
        )
        # the cell's YAML is a scenario file the loader reads back to the same scenario
        assert replace(parse(c.yaml, "again"), source="") == replace(c.scenario, source="")


def test_paths_through_lists_sysctls_and_missing_mappings() -> None:
    data = {"nodes": [{"name": "node-a"}, {"name": "node-b"}], "sysctls": {"x.y": 0}, "links": {}}
    apply(data, "nodes.node-b.kernel", "6.1")
    apply(data, "nodes.0.sysctls.net.netfilter.nf_conntrack_tcp_loose", 0)
    apply(data, "sysctls.x.y", 1)
    apply(data, "links.pod.faults.loss", 0.1)
    assert data == {
        "nodes": [
            {"name": "node-a", "sysctls": {"net.netfilter.nf_conntrack_tcp_loose": 0}},
            {"name": "node-b", "kernel": "6.1"},
        ],
        "sysctls": {"x.y": 1},
        "links": {"pod": {"faults": {"loss": 0.1}}},
    }
    with pytest.raises(ValueError, match="no item named 'node-c'"):
        apply(data, "nodes.node-c.kernel", "6.1")
    with pytest.raises(ValueError, match="not a mapping"):
        apply(data, "nodes.0.name.x", 1)


def test_a_node_axis_reaches_that_node_only() -> None:
    grid = parse_grid("scenario: builtin:small\naxes:\n  nodes.node-b.kernel: ['6.1']\nseeds: 1\n", "g", None)
    (cell,) = cells(grid)
    assert [n.kernel for n in cell.scenario.nodes] == [None, "6.1"]


BAD = [
    ("scenario: builtin:small\nseeds: 2\nextra: 1\n", 3, "extra: unknown key"),
    ("axes: {}\nseeds: 2\n", 1, "missing 'scenario'"),
    ("scenario: builtin:nope\nseeds: 2\n", 1, "no built-in scenario 'nope'"),
    ("scenario: missing.yaml\nseeds: 2\n", 1, "cannot read"),
    ("scenario: builtin:small\nseeds: 0\n", 2, "seeds: expected a number of seeds >= 1"),
    ("scenario: builtin:small\nseeds: [1, 1]\n", 2, "a seed appears twice"),
    ("scenario: builtin:small\nseeds: [1, x]\n", 2, "seeds: expected N"),
    (
        "scenario: builtin:small\naxes:\n  kernel: '5.4'\nseeds: 2\n",
        3,
        "axes.kernel: expected a non-empty list",
    ),
    ("scenario: builtin:small\naxes:\n  kernel: ['5.4', '5.4']\nseeds: 2\n", 3, "a value appears twice"),
    ("scenario: builtin:small\nseeds: 2\naxes:\n  variant: [as_is, nope]\n", 4, "unknown variant 'nope'"),
    (
        "scenario: builtin:small\nseeds: 2\naxes:\n  variant: [as_is]\n  kernel: ['5.4', '7.0']\n",
        5,
        "axes.kernel: value '7.0': kernel: expected one of 5.4, 6.1, host",
    ),
    (
        "scenario: builtin:small\naxes:\n\n  links.fabric.faults.slow_share: [0.1, 2]\nseeds: 2\n",
        4,
        "value 2: links.fabric.faults.slow_share: expected a probability between 0 and 1",
    ),
    (
        "scenario: builtin:small\naxes:\n  links.fabirc.queue: [10]\nseeds: 2\n",
        3,
        "axes.links.fabirc.queue: value 10: links.fabirc: unknown key",
    ),
    (
        "scenario: builtin:small\naxes:\n  workload.file_size: [1MB, lots]\nseeds: 2\n",
        3,
        "value 'lots': workload.file_size:",
    ),
    (
        "scenario: builtin:small\naxes:\n  nodes.node-z.kernel: ['6.1']\nseeds: 2\n",
        3,
        "nodes has no item named 'node-z'",
    ),
    ("scenario: builtin:small\naxes: [1]\nseeds: 2\n", 2, "axes: expected a mapping"),
    ("scenario: [builtin:small\n", 2, "invalid YAML"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_grid_is_file_line_exit_2_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, line: int, message: str
) -> None:
    grid = write_grid(tmp_path, text)
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        cells(load_grid(str(grid)))
    assert str(caught.value).startswith(f"{grid}:{line}: "), str(caught.value)
    assert message in str(caught.value)
    code, stdout, stderr = run_cli(capsys, "sweep", str(grid), "--out", str(out))
    assert code == 2
    assert stderr == f"kplab: {caught.value}\n" and stdout == ""
    assert not out.exists()  # nothing ran, nothing was kept


def test_bad_grid_from_the_shell_is_one_line(tmp_path: Path) -> None:
    grid = write_grid(tmp_path, BAD[-3][0])
    proc = subprocess.run([*KPLAB, "sweep", str(grid)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"kplab: {grid}:3: ") and proc.stderr.count("\n") == 1


def test_a_cell_the_values_make_impossible_names_the_axes_line(tmp_path: Path) -> None:
    # each value alone is fine (one client is left); together no pod is a client
    text = ("scenario: builtin:small\naxes:\n  pods.client-1.labels.role: [client, x]\n"
            "  pods.client-2.labels.role: [client, x]\nseeds: 1\n")  # fmt: skip
    grid = write_grid(tmp_path, text)
    with pytest.raises(InputError, match=rf"^{grid}:2: axes: the cell .*no pod matches"):
        cells(load_grid(str(grid)))


def test_builtin_sweeps_are_valid() -> None:
    risk = load_grid("builtin:seed-risk")
    assert [a.name for a in risk.axes] == ["links.fabric.faults.slow_share", "kernel", "variant"]
    assert len(cells(risk)) == 24 and len(risk.seeds) == 16
    assert len(cells(load_grid("builtin:small"))) == 4
    with pytest.raises(InputError, match="no built-in sweep 'nope'"):
        load_grid("builtin:nope")


def test_run_key_is_content_variant_seed() -> None:
    grid = parse_grid(GRID, "g", None)
    a, b = cells(grid)[:2]
    key = run_key(a.scenario, "as_is", 1)
    # the same content read from another file with another seed field: the same key
    reread = replace(parse(a.yaml.replace("seed: 1", "seed: 9"), "elsewhere.yaml"))
    assert run_key(reread, "as_is", 1) == key
    assert run_key(a.scenario, "as_is", 2) != key
    assert run_key(a.scenario, "drop_invalid", 1) != key
    other = cells(grid)[2].scenario  # another kernel
    assert run_key(other, "as_is", 1) != key and b.scenario == a.scenario


def test_code_identity_follows_the_sources(tmp_path: Path) -> None:
    """An edited source gives another identity (and so other cache keys); the same sources, the same."""
    package = tmp_path / "kplab"
    (package / "netfilter").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "netfilter" / "rule.py").write_text("X = 1\n")
    first = code_identity(package)
    (package / "netfilter" / "rule.py").write_text("X = 2\n")
    assert code_identity(package) != first
    (package / "netfilter" / "rule.py").write_text("X = 1\n")
    assert code_identity(package) == first
    assert code_identity() == code_identity() != first


def test_wilson_interval() -> None:
    # Textbook values (Wilson 1927; Newcombe 1998, table I): 5/10 and 0/10.
    low, high = wilson(5, 10)
    assert math.isclose(low, 0.2366, abs_tol=5e-5) and math.isclose(high, 0.7634, abs_tol=5e-5)
    low, high = wilson(0, 10)
    assert low == 0.0 and math.isclose(high, 0.2775, abs_tol=5e-5)
    low, high = wilson(10, 10)
    assert math.isclose(low, 0.7225, abs_tol=5e-5) and high == 1.0
    low, high = wilson(81, 263)  # Newcombe's example 81/263: 0.2553 - 0.3662
    assert math.isclose(low, 0.2553, abs_tol=5e-5) and math.isclose(high, 0.3662, abs_tol=5e-5)
