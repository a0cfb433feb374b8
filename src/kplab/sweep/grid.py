"""The grid file of `kplab sweep`, read strictly, and its cells validated against the scenario schema.

```yaml
scenario: builtin:seed            # builtin:NAME or a path (relative to the grid file)
axes:                             # a scenario field by dotted path, or `variant`
  variant: [as_is, control, drop_invalid, be_liberal]
  links.fabric.faults.slow_share: [0.0001, 0.0003]
  kernel: ["5.4", "6.1"]
seeds: 16                         # seeds 1..16; or an explicit list [3, 5, 8]
```

Every value is applied to the scenario's YAML data and read by the scenario loader itself
(`kplab.scenario.load.parse`) before anything runs: a bad path or value is `grid.yaml:LINE: ...`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kplab.errors import InputError
from kplab.repro.variants import VARIANTS
from kplab.scenario.load import builtin_text, parse
from kplab.scenario.schema import Scenario
from kplab.scenario.yamlines import LineDict
from kplab.scenario.yamlines import load as load_yaml
from kplab.sweep.overrides import apply, plain
from kplab.untrusted import read_text

VARIANT = "variant"
BUILTIN = "builtin:"
_CELL = "<cell>"
_LOCATION = re.compile(r"^<cell>:\d+: ")


@dataclass(frozen=True, slots=True)
class Axis:
    name: str  # a dotted scenario field path, or `variant`
    values: tuple[Any, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Grid:
    source: str  # the grid file, or <builtin:NAME>
    text: str  # the grid as written (for the report)
    scenario_ref: str
    scenario_source: str  # the scenario's file name in its own errors
    scenario_data: dict[str, Any]  # the scenario's YAML data, plain
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    line: int  # of `axes` (errors of a whole cell)


@dataclass(frozen=True, slots=True)
class Cell:
    params: dict[str, Any]  # axis name -> value, in the grid's order
    scenario: Scenario  # the scenario with the cell's field values (variant not applied)
    yaml: str  # the same scenario as a scenario file (`kplab repro -f`)
    variant: str


def _builtin_names(kind: str) -> list[str]:
    folder = resources.files("kplab") / "data" / kind
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_grid_text(name: str) -> str:
    if name not in _builtin_names("sweeps"):
        known = ", ".join(_builtin_names("sweeps"))
        raise InputError(f"{BUILTIN}{name}:0: no built-in sweep {name!r} (built in: {known})")
    return (resources.files("kplab") / "data" / "sweeps" / f"{name}.yaml").read_text()


def load_grid(ref: str) -> Grid:
    """A grid file by path, or a built-in sweep (`builtin:seed-risk`)."""
    if ref.startswith(BUILTIN):
        name = ref[len(BUILTIN) :]
        return parse_grid(builtin_grid_text(name), f"<{BUILTIN}{name}>", None)
    return parse_grid(read_text(ref), ref, Path(ref).parent)


def _error(file: str, data: LineDict, key: str, message: str) -> InputError:
    return InputError(f"{file}:{data.line_of(key)}: {key}: {message}")


def _scenario(ref: Any, file: str, data: LineDict, base: Path | None) -> tuple[str, str]:
    """(text, name in errors) of the grid's scenario."""
    if not isinstance(ref, str) or not ref:
        raise _error(file, data, "scenario", f"expected builtin:NAME or a path, got {ref!r}")
    if ref.startswith(BUILTIN):
        name = ref[len(BUILTIN) :]
        if name not in _builtin_names("scenarios"):
            known = ", ".join(_builtin_names("scenarios"))
            raise _error(file, data, "scenario", f"no built-in scenario {name!r} (built in: {known})")
        return builtin_text(name), f"<{BUILTIN}{name}>"
    if base is None:
        raise _error(file, data, "scenario", "a built-in sweep takes a built-in scenario")
    path = base / ref
    try:
        return read_text(path), str(path)
    except InputError as exc:
        raise _error(file, data, "scenario", str(exc)) from None


def _seeds(value: Any, file: str, data: LineDict) -> tuple[int, ...]:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if is_int(value):
        if value < 1:
            raise _error(file, data, "seeds", f"expected a number of seeds >= 1, got {value}")
        return tuple(range(1, value + 1))
    if isinstance(value, list) and value and all(is_int(v) for v in value):
        if len(set(value)) != len(value):
            raise _error(file, data, "seeds", "a seed appears twice")
        return tuple(value)
    raise _error(
        file, data, "seeds", f"expected N (seeds 1..N) or a non-empty list of integers, got {value!r}"
    )


def _axes(value: Any, file: str, data: LineDict) -> tuple[Axis, ...]:
    if value is None:
        return ()
    if not isinstance(value, LineDict):
        raise _error(file, data, "axes", "expected a mapping of field path: [values]")
    axes = []
    for name, values in value.items():
        line = value.line_of(name)
        where = f"{file}:{line}: axes.{name}"
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: expected a non-empty list of values")
        for v in values:
            if isinstance(v, dict | list) or v is None:
                raise InputError(f"{where}: expected plain values (numbers, strings), got {v!r}")
        if len({repr(v) for v in values}) != len(values):
            raise InputError(f"{where}: a value appears twice")
        if name == VARIANT:
            for v in values:
                if v not in VARIANTS:
                    raise InputError(f"{where}: unknown variant {v!r} (variants: {', '.join(VARIANTS)})")
        axes.append(Axis(str(name), tuple(values), line))
    return tuple(axes)


def parse_grid(text: str, file: str, base: Path | None) -> Grid:
    data = load_yaml(text, file)
    if not isinstance(data, LineDict):
        raise InputError(f"{file}:1: grid: expected a mapping with scenario, axes and seeds")
    for key in data:
        if key not in ("scenario", "axes", "seeds"):
            raise _error(file, data, key, "unknown key (a grid has scenario, axes, seeds)")
    for key in ("scenario", "seeds"):
        if key not in data:
            raise InputError(f"{file}:{data.line}: grid: missing '{key}'")
    scenario_text, scenario_source = _scenario(data["scenario"], file, data, base)
    parse(scenario_text, scenario_source)  # the scenario itself is valid (its own file:line)
    grid = Grid(
        source=file,
        text=text,
        scenario_ref=data["scenario"],
        scenario_source=scenario_source,
        scenario_data=plain(load_yaml(scenario_text, scenario_source)),
        axes=_axes(data.get("axes"), file, data),
        seeds=_seeds(data["seeds"], file, data),
        line=data.line_of("axes"),
    )
    _check_values(grid)
    return grid


def _scenario_for(grid: Grid, params: dict[str, Any]) -> tuple[Scenario, str]:
    """The scenario with these field values, read by the scenario loader. ValueError: bad path;
    InputError (`<cell>:LINE: ...`): the loader's verdict."""
    data = plain(grid.scenario_data)
    for name, value in params.items():
        if name != VARIANT:
            apply(data, name, value)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return parse(text, _CELL), text


def _loader_message(exc: InputError) -> str:
    return _LOCATION.sub("", str(exc))


def _check_values(grid: Grid) -> None:
    """Each value of each field axis alone, so an error names the axis' line in the grid."""
    for axis in grid.axes:
        if axis.name == VARIANT:
            continue
        for value in axis.values:
            where = f"{grid.source}:{axis.line}: axes.{axis.name}"
            try:
                _scenario_for(grid, {axis.name: value})
            except ValueError as exc:
                raise InputError(f"{where}: {exc}") from None
            except InputError as exc:
                raise InputError(f"{where}: value {value!r}: {_loader_message(exc)}") from None


def cells(grid: Grid) -> list[Cell]:
    """Every combination of the axes' values, in the grid's order (the last axis varies fastest)."""
    result = []
    names = [a.name for a in grid.axes]
    for combo in itertools.product(*(a.values for a in grid.axes)):
        params = dict(zip(names, combo, strict=True))
        try:
            scenario, text = _scenario_for(grid, params)
        except InputError as exc:
            raise InputError(
                f"{grid.source}:{grid.line}: axes: the cell {params}: {_loader_message(exc)}"
            ) from None
        result.append(Cell(params, scenario, text, str(params.get(VARIANT, "as_is"))))
    return result
