"""`kplab sweep --report FILE.html`: one self-contained static page (inline SVG and CSS, no
scripts, nothing fetched): the figures, the cell table, the grid and kplab's version."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from kplab import __version__
from kplab.sweep.grid import VARIANT, Grid
from kplab.sweep.plots import axis_plot, heatmap, is_numeric

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.meta { color: #555; } figure { margin: 1em 0; overflow-x: auto; } svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: 0.25em 0.7em; text-align: right; }
th { border-bottom: 2px solid #888; } th.param, td.param { text-align: left; }
tr:nth-child(even) { background: #f6f6f6; }
pre { background: #f4f4f4; padding: 0.8em; overflow-x: auto; }
"""


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _cell_table(axes: list[str], cells: list[dict[str, Any]]) -> str:
    head = "".join(f'<th class="param">{html.escape(a)}</th>' for a in axes)
    head += "<th>runs</th><th>reset runs</th><th>P(reset)</th><th>95% interval</th>"
    rows = []
    for c in cells:
        p = c["reset_probability"]
        shade = f' style="background: rgba(214, 39, 40, {0.6 * p:.2f})"' if p else ""
        params = "".join(f'<td class="param">{html.escape(str(c["params"][a]))}</td>' for a in axes)
        rows.append(f"<tr>{params}<td>{c['runs']}</td><td>{c['resets']}</td><td{shade}>{_fmt(p)}</td>"
                    f"<td>{_fmt(c['ci_low'])} – {_fmt(c['ci_high'])}</td></tr>")  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figures(grid: Grid, cells: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(caption, svg) of every figure the page shows."""
    values = {a.name: a.values for a in grid.axes}
    fields = [a for a in values if a != VARIANT]
    result = []
    for axis in fields or ([VARIANT] if VARIANT in values else []):
        result.append((f"Reset probability against {axis}", axis_plot(cells, axis, values)))
    numeric = [a for a in fields if is_numeric(values[a]) and len(values[a]) > 1]
    if len(numeric) >= 2:
        x, y = numeric[0], numeric[1]
        result.append((f"Reset probability over {x} and {y}", heatmap(cells, x, y, values)))
    return result


def render(grid: Grid, cells: list[dict[str, Any]], runs: int) -> str:
    axes = [a.name for a in grid.axes]
    title = f"kplab sweep: {grid.scenario_ref}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">grid {html.escape(grid.source)} · {len(cells)} cells · {runs} runs · '
        f"{len(grid.seeds)} seeds per cell · kplab {html.escape(__version__)}</p>",
        "<p>A run <em>resets</em> when at least one server connection was reset. The interval is the 95% "
        "Wilson score interval of the share of runs that reset.</p>",
    ]
    for caption, svg in figures(grid, cells):
        parts.append(f"<h2>{html.escape(caption)}</h2><figure>{svg}</figure>")
    parts.append(f"<h2>Cells</h2>{_cell_table(axes, cells)}")
    parts.append(f"<h2>Grid</h2><pre>{html.escape(grid.text)}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write(path: Path, grid: Grid, cells: list[dict[str, Any]], runs: int) -> None:
    path.write_text(render(grid, cells, runs))
