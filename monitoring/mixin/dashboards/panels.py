"""Thin helpers over grafana-foundation-sdk so every panel is built the same way.

Each panel gets the ``$datasource`` variable, a description (what question it answers), refIds A, B,
... and a unit; :func:`finish` numbers the panels and returns plain JSON-ready data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Q:
    """One query of a panel: PromQL and how Grafana labels its series."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False


def _query(q: Q, ref: str) -> prometheus.Dataquery:
    b = prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(ref).datasource(DATASOURCE)
    if q.instant:
        b = b.instant()
    else:
        b = b.range()
    if q.table:
        b = b.format(PromQueryFormat.TABLE)
    return b


P = TypeVar("P", timeseries.Panel, stat.Panel, table.Panel)


def _with_queries(panel: P, queries: Sequence[Q]) -> P:
    for i, q in enumerate(queries):
        panel = panel.with_target(_query(q, chr(ord("A") + i)))
    return panel


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


GOOD = thresholds((None, "green"))


def timeseries_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    unit: str,
    *,
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    min_: float | None = 0,
    max_: float | None = None,
    steps: db.ThresholdsConfig | None = None,
    dashed_regex: str | None = None,
) -> timeseries.Panel:
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .fill_opacity(10 if not stack else 60)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(
            cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
        )
    )
    if min_ is not None:
        p = p.min(min_)
    if max_ is not None:
        p = p.max(max_)
    if stack:
        p = p.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    if steps is not None:
        p = p.thresholds(steps).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.DASHED)
        )
    if dashed_regex is not None:  # requests/limits drawn as dashed lines next to the usage they bound
        p = p.override_by_regexp(
            dashed_regex,
            [
                DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
                DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        )
    return _with_queries(p, queries)


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    unit: str,
    *,
    w: int = 4,
    h: int = 4,
    steps: db.ThresholdsConfig = GOOD,
    decimals: float | None = None,
    calc: str = "lastNotNull",
    text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
) -> stat.Panel:
    p = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .thresholds(steps)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(text_mode)
        .reduce_options(cb.ReduceDataOptions().calcs([calc]).values(False))
    )
    if decimals is not None:
        p = p.decimals(decimals)
    return _with_queries(p, queries)


def table_panel(
    title: str,
    description: str,
    queries: Sequence[Q],
    *,
    w: int = 24,
    h: int = 8,
    organize: dict[str, Any] | None = None,
    units: dict[str, str] | None = None,
) -> table.Panel:
    """A table of instant queries merged on their labels (one row per label set)."""
    p = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(w)
        .height(h)
        .show_header(True)
    )
    p = p.with_transformation(DataTransformerConfig(id_val="merge", options={}))
    if organize is not None:
        p = p.with_transformation(DataTransformerConfig(id_val="organize", options=organize))
    for name, unit in (units or {}).items():
        p = p.override_by_name(name, [DynamicConfigValue(id_val="unit", value=unit)])
    return _with_queries(p, queries)


def row(title: str) -> db.Row:
    return db.Row(title)


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    include_all: bool = False,
) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )


def finish(board: db.Dashboard) -> dict[str, Any]:
    """The dashboard as plain data, with unique panel ids (the SDK leaves them unset)."""
    data: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    next_id = 1
    for panel in data["panels"]:
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1
    for var in data.get("templating", {}).get("list", []):
        var.pop("id", None)  # the SDK writes a zero UUID; Grafana keys variables by name
    return data
