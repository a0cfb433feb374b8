"""The sweep report's figures (matplotlib, rendered to inline SVG): reset probability with its
95% interval against each axis, one line per variant; a heatmap of two numeric axes."""

from __future__ import annotations

import io
import itertools
from typing import Any

from kplab.sweep.aggregate import pooled
from kplab.sweep.grid import VARIANT

MAX_PANELS = 4  # more combinations of the other axes than this: pooled into one panel
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


def _svg(fig: Any) -> str:
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "kplab", "svg.fonttype": "path"}):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(panels: int, width: float = 4.2, height: float = 3.2) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * panels, height), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    return fig, list(axes)


def is_numeric(values: tuple[Any, ...] | list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _panels(
    rows: list[dict[str, Any]], others: list[str], axis_values: dict[str, tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """One filter per panel: each combination of the other axes' values, or one pooled panel."""
    count = 1
    for a in others:
        count *= len(axis_values[a])
    if not others or count > MAX_PANELS:
        return [{}]
    return [
        dict(zip(others, combo, strict=True))
        for combo in itertools.product(*(axis_values[a] for a in others))
    ]


def _title(panel: dict[str, Any], pooled_over: list[str]) -> str:
    if panel:
        return ", ".join(f"{k} = {v}" for k, v in panel.items())
    return f"pooled over {', '.join(pooled_over)}" if pooled_over else ""


def axis_plot(cells: list[dict[str, Any]], axis: str, axis_values: dict[str, tuple[Any, ...]]) -> str:
    """P(reset) against `axis` (categorical positions), one line per variant, one panel per
    combination of the remaining field axes."""
    variants = list(axis_values.get(VARIANT, ()))
    others = [a for a in axis_values if a not in (axis, VARIANT)]
    panels = _panels(cells, others, axis_values)
    xs = list(axis_values[axis])
    fig, plots = _figure(len(panels))
    lines = variants or [None]
    for ax, panel in zip(plots, panels, strict=True):
        keep = [*panel, axis, *([VARIANT] if variants else [])]
        rows = pooled([c for c in cells if all(c["params"][k] == v for k, v in panel.items())], keep)
        for i, name in enumerate(lines):
            mine = [r for r in rows if name is None or r["params"][VARIANT] == name]
            points = [(xs.index(r["params"][axis]), r) for r in mine if r["runs"]]
            dodge = (i - (len(lines) - 1) / 2) * 0.06
            x = [pos + dodge for pos, _ in points]
            y = [r["reset_probability"] for _, r in points]
            err = [[r["reset_probability"] - r["ci_low"] for _, r in points],
                   [r["ci_high"] - r["reset_probability"] for _, r in points]]  # fmt: skip
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=COLORS[i % len(COLORS)],
                        label=name or "reset probability")  # fmt: skip
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(axis)
        ax.set_ylabel("P(reset), 95% interval")
        ax.set_title(_title(panel, [] if panel else others), fontsize=9)
        ax.grid(alpha=0.3)
    if variants:
        plots[-1].legend(fontsize=8, title="variant", title_fontsize=8, loc="upper left",
                         bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # fmt: skip
    return _svg(fig)


def heatmap(
    cells: list[dict[str, Any]], x_axis: str, y_axis: str, axis_values: dict[str, tuple[Any, ...]]
) -> str:
    """P(reset) over two numeric axes, one panel per variant (other axes pooled)."""
    variants = list(axis_values.get(VARIANT, ())) or [None]
    xs, ys = list(axis_values[x_axis]), list(axis_values[y_axis])
    fig, plots = _figure(len(variants), width=3.4, height=3.0)
    image = None
    for ax, name in zip(plots, variants, strict=True):
        mine = [c for c in cells if name is None or c["params"][VARIANT] == name]
        grid = [[float("nan")] * len(xs) for _ in ys]
        for r in pooled(mine, [x_axis, y_axis]):
            if r["runs"]:
                j, i = xs.index(r["params"][x_axis]), ys.index(r["params"][y_axis])
                grid[i][j] = r["reset_probability"]
                ax.text(j, i, f"{r['reset_probability']:.2f}\nn={r['runs']}", ha="center", va="center",
                        fontsize=7, color="white" if r["reset_probability"] > 0.6 else "black")  # fmt: skip
        image = ax.imshow(grid, cmap="Reds", vmin=0, vmax=1, origin="lower", aspect="auto")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs], fontsize=8)
        ax.set_yticks(range(len(ys)), [str(v) for v in ys], fontsize=8)
        ax.set_xlabel(x_axis, fontsize=8)
        ax.set_ylabel(y_axis, fontsize=8)
        ax.set_title(name or "", fontsize=9)
    fig.colorbar(image, ax=plots, label="P(reset)", shrink=0.9)
    return _svg(fig)
