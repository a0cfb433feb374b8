"""`-f FILE` runs with the file's `seed:`; `--seed N` overrides it (run, repro and lab repro share
one decorator, `kplab.cli.scenario_opts`)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from kplab.cli import cli
from kplab.cli.scenario_opts import scenario_options
from kplab.net.run import run as emulate
from kplab.repro.run import run_variants
from kplab.scenario.load import builtin_text, load_file
from kplab.scenario.schema import Scenario


@pytest.fixture
def seven(tmp_path: Path) -> Path:
    """The seed scenario with `seed: 7` and a short run."""
    text = (
        builtin_text().replace("\nseed: 1\n", "\nseed: 7\n").replace("\nduration: 30s\n", "\nduration: 2s\n")
    )
    assert "\nseed: 7\n" in text and "\nduration: 2s\n" in text
    path = tmp_path / "seven.yaml"
    path.write_text(text)
    return path


def _json(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [*args, "-o", "json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    data.pop("wall_seconds")
    return data


def _variants(scenario: Scenario) -> dict[str, Any]:
    data = run_variants(scenario, ("as_is",))
    data.pop("wall_seconds")
    return data


def test_repro_takes_the_files_seed_unless_seed_is_given(seven: Path) -> None:
    from_file = _json(["repro", "-f", str(seven), "--fix", "none"])
    assert from_file["seed"] == 7
    assert from_file == _variants(load_file(seven))
    overridden = _json(["repro", "-f", str(seven), "--fix", "none", "--seed", "3"])
    assert overridden["seed"] == 3
    assert overridden == _variants(replace(load_file(seven), seed=3))


def test_run_takes_the_files_seed_unless_seed_is_given(seven: Path) -> None:
    for args, seed in (([], 7), (["--seed", "3"], 3)):
        data = _json(["run", str(seven), *args])
        _, expected = emulate(replace(load_file(seven), seed=seed))
        expected.pop("wall_seconds")
        assert data["seed"] == seed and data == expected


def test_the_decorator_loads_the_scenario_with_its_seed(seven: Path) -> None:
    seen: list[Scenario] = []

    @click.command()
    @scenario_options()
    def command(scenario: Scenario) -> None:
        seen.append(scenario)

    for args in ([], ["-f", str(seven)], ["-f", str(seven), "--seed", "3"], ["--seed", "5"]):
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 0, result.output
    assert [(s.name, s.seed) for s in seen] == [("seed", 1), ("seed", 7), ("seed", 3), ("seed", 5)]
    assert [s.duration_ns for s in seen[1:3]] == [2_000_000_000] * 2
