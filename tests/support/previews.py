"""Dashboard previews: each panel of the Grafana dashboards drawn from a real Prometheus's answers, one
PNG per dashboard row, for readers without a Grafana at hand (Grafana is AGPL-licensed and not run
here). The dashboards users import stay the JSON in charts/platform-monitoring/files/dashboards.

Queries are the dashboards' own, with the variables substituted as Grafana does (support.prometheus);
a time series panel is drawn as lines over the window, a stat as its last value, a table as its rows.
Colours, units and thresholds are Grafana's business: these are previews of the data, not of the look.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from .prometheus import PrometheusAPI, grafana_interpolate, resolve_variables


def _legend(fmt: str | None, metric: Mapping[str, str]) -> str:
    if not fmt or fmt == "__auto":
        return ",".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m[1], ""), fmt)


def _rows(board: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(row title, its panels) in dashboard order; panels before the first row go in an untitled one."""
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            rows.append((panel["title"], list(panel.get("panels", []))))
        elif rows:
            rows[-1][1].append(panel)
        else:
            rows.append(("", [panel]))
    return [(title, panels) for title, panels in rows if panels]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def draw_dashboard(
    prom: PrometheusAPI,
    board: dict[str, Any],
    pick: Mapping[str, str],
    start: float,
    end: float,
    step: float,
    builtins: Mapping[str, str],
    out: Path,
) -> list[Path]:
    """Draw every row of ``board`` with the variables ``pick`` chooses (others: All) into ``out``;
    returns the files written."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    chosen = resolve_variables(prom, board, start, end, pick)
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for n, (title, panels) in enumerate(_rows(board), 1):
        cols = min(3, len(panels))
        nrows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.0 * nrows), squeeze=False)
        for ax, panel in zip(axes.flat, panels, strict=False):
            _draw_panel(ax, prom, panel, variables, chosen, builtins, start, end, step)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        choice = ", ".join(f"{k}={v}" for k, v in pick.items()) or "all namespaces and models"
        fig.suptitle(
            f"{board['title']}: {title}  ({choice}; preview from the cluster's Prometheus)", fontsize=10
        )
        fig.tight_layout()
        path = out / f"{board['uid']}-{n}-{_slug(title)}.png"
        fig.savefig(path, dpi=72)
        plt.close(fig)
        written.append(path)
    return written


def _draw_panel(
    ax: Any,
    prom: PrometheusAPI,
    panel: dict[str, Any],
    variables: Mapping[str, dict[str, Any]],
    chosen: Mapping[str, list[str]],
    builtins: Mapping[str, str],
    start: float,
    end: float,
    step: float,
) -> None:
    ax.set_title(panel["title"], fontsize=9)
    ax.tick_params(labelsize=7)
    exprs = [
        (t, grafana_interpolate(t["expr"], variables, chosen, builtins)) for t in panel.get("targets", [])
    ]
    if panel["type"] == "timeseries":
        lines = 0
        for target, expr in exprs:
            for series in prom.query_range(expr, start, end, step):
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ax.plot(xs, ys, label=_legend(target.get("legendFormat"), series["metric"])[:40], linewidth=1)
                lines += 1
        ax.set_xlabel("seconds", fontsize=7)
        if lines:
            ax.legend(fontsize=6, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    # stat and table: the values at the end of the window, as text
    ax.axis("off")
    lines_text = []
    for target, expr in exprs:
        for r in prom.query(expr, end):
            value = float(r["value"][1])
            shown = f"{value:.4g}" if math.isfinite(value) else str(value)
            lines_text.append(f"{_legend(target.get('legendFormat'), r['metric'])[:48]}: {shown}")
    if panel["type"] == "stat":  # a few big numbers, as a stat panel shows them
        text = "\n".join(lines_text[:4]) or "no data"
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
        return
    text = "\n".join(lines_text[:12]) or "no data"
    ax.text(0.02, 0.95, text, ha="left", va="top", fontsize=7, family="monospace", transform=ax.transAxes)
