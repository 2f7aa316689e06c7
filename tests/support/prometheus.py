"""What the cluster suite's monitoring tests need around the cluster's Prometheus.

- :class:`PrometheusAPI`: its HTTP API (through a port-forward).
- :func:`grafana_interpolate`, :func:`resolve_variables`: dashboard variables substituted the way
  Grafana's Prometheus data source does it, and $__rate_interval as Grafana computes it.
- :func:`sample_rows`: request rows drawn from a bundle's own reference statistics, so "clean" traffic
  looks like the training data by construction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np


class PrometheusAPI:
    """The HTTP API of a Prometheus at ``url``: this machine's (a loopback port) or the cluster's (a
    port-forward)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10.0, trust_env=False)

    def api(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"/api/v1/{path}", params=params)
        body = r.json()
        if body.get("status") != "success":
            raise PromQLError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self.api("query", **params)
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def series(self, match: str, start: float, end: float) -> list[dict]:
        return self.api("series", **{"match[]": match, "start": start, "end": end})

    def firing(self) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if a["state"] == "firing"]


class PromQLError(AssertionError):
    pass


def finite_values(result: list[dict]) -> list[float]:
    """Every sample value of a query result (vector or matrix) that is a finite number."""
    out = []
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        for _, v in samples:
            f = float(v)
            if np.isfinite(f):
                out.append(f)
    return out


# -- Grafana ---------------------------------------------------------------------------------------
def rate_interval(scrape_interval_s: float, interval_s: float) -> str:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval)."""
    return f"{int(max(interval_s + scrape_interval_s, 4 * scrape_interval_s))}s"


def _regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def _regex_escape(value: str) -> str:
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*+?.()|\[\]{}]", lambda m: "\\\\" + m.group(0), value)


def grafana_interpolate(
    expr: str, variables: Mapping[str, dict], chosen: Mapping[str, list[str]], builtins: Mapping[str, str]
) -> str:
    """Substitute $var / ${var} as Grafana's Prometheus data source does (interpolateQueryExpr):
    a single-value variable is inserted as is; a multi-value or include-all one is regex-escaped and
    joined into (a|b) when it holds several values."""

    def value(name: str) -> str:
        if name in builtins:
            return builtins[name]
        var, values = variables[name], chosen[name]
        if not var.get("multi") and not var.get("includeAll"):
            return _regular_escape(values[0])
        escaped = [_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: value(m.group(1) or m.group(2)), expr)


def resolve_variables(
    prom: PrometheusAPI, board: dict, start: float, end: float, pick: Mapping[str, str]
) -> dict[str, list[str]]:
    """Each query variable's value, in dashboard order, as Grafana would offer it: options from
    label_values() against Prometheus; ``pick`` chooses a single value, otherwise All (every option)."""
    variables = {v["name"]: v for v in board["templating"]["list"]}
    chosen: dict[str, list[str]] = {}
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = grafana_interpolate(var["query"], variables, chosen, {})
        metric, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query).groups()
        options = sorted({s[label] for s in prom.series(metric, start, end) if label in s})
        assert options, f"variable {var['name']}: {query} offers nothing"
        if var["name"] in pick:
            assert pick[var["name"]] in options, (var["name"], pick[var["name"]], options)
            chosen[var["name"]] = [pick[var["name"]]]
        else:
            assert var.get("includeAll"), f"variable {var['name']} needs a choice"
            chosen[var["name"]] = options
    return chosen


# -- traffic ---------------------------------------------------------------------------------------
def _bin_value(stat: dict, b: int, integer: bool) -> Any:
    if stat["kind"] == "categorical":
        return b
    edges = stat["edges"]
    if b == 0:
        v = edges[0]
    elif b == len(edges):
        v = edges[-1] + 1.0
    else:
        v = (edges[b - 1] + edges[b]) / 2
    return int(np.ceil(v)) if integer else float(v)


def sample_rows(metadata: dict, n: int, rng: np.random.Generator, shift: bool = False) -> list[dict]:
    """``n`` records whose every feature follows the reference's bin shares; ``shift`` puts every
    numeric feature above its highest training decile instead (a clear input drift)."""
    columns = {}
    for f in metadata["features"]:
        stat = metadata["reference"]["features"][f["name"]]
        integer = f["dtype"] == "int"
        if stat["kind"] == "categorical":
            values = [k for k in stat["counts"] if k != "__other__"]
            weights = np.array([stat["counts"][k] for k in values], dtype=float)
            columns[f["name"]] = list(rng.choice(values, size=n, p=weights / weights.sum()))
            continue
        counts = np.array(stat["counts"], dtype=float)
        bins = (
            np.full(n, len(counts) - 1) if shift else rng.choice(len(counts), size=n, p=counts / counts.sum())
        )
        columns[f["name"]] = [_bin_value(stat, int(b), integer) for b in bins]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(columns, row)}
        for row in zip(*columns.values())
    ]
