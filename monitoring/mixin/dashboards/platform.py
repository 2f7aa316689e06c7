"""The platform overview: every model in every namespace (environment) on one page.

Built on the recorded SLIs, so it stays cheap with many models. The table links each model to the
one-model dashboard.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DashboardLinkType, DynamicConfigValue

from ..config import (
    AVAILABILITY,
    DRIFT_ALERT,
    DRIFT_WARN,
    HPA_MODEL_INFO,
    LATENCY,
    POD_MODEL_INFO,
    sli_record,
)
from . import model
from .panels import (
    Q,
    datasource_variable,
    finish,
    query_variable,
    row,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)

UID = "model-server-platform"
SEL = 'namespace=~"$namespace", model=~"$model"'
RATE = "namespace_model_code:model_server_requests:rate5m"
BUCKETS = "namespace_model_le:model_server_request_duration_seconds_bucket:rate5m"
ALERTS = f'ALERTS{{alertname=~"ModelServer.*", alertstate="firing", {SEL}}}'
PSI_STEPS = thresholds((None, "green"), (DRIFT_WARN, "yellow"), (DRIFT_ALERT, "red"))
MODEL_LINK = (
    f"/d/{model.UID}?var-namespace=${{__data.fields.namespace}}&var-model=${{__data.fields.model}}"
    "&${__url_time_range}"
)


def _fleet() -> list[Any]:
    by = "namespace, model"
    return [
        row("Fleet: what runs where, and is it healthy?"),
        stat_panel(
            "Models",
            "Distinct models (namespace and name) with at least one scraped pod.",
            [Q(f"count(count by ({by}) (model_server_model_info{{{SEL}}}))", "models")],
            "short",
        ),
        stat_panel(
            "Ready pods",
            "Pods serving a loaded model, out of the pods scraped.",
            [
                Q(f"sum(model_server_model_ready{{{SEL}}})", "ready"),
                Q(f"count(model_server_model_ready{{{SEL}}})", "scraped"),
            ],
            "short",
        ),
        stat_panel(
            "Prediction requests/s",
            "All prediction requests across the selected models.",
            [Q(f"sum({RATE}{{{SEL}}})", "requests/s")],
            "reqps",
        ),
        stat_panel(
            "Worst failure ratio (1h)",
            "The highest availability error ratio of any selected model "
            f"over the last hour (SLO: {AVAILABILITY.budget:.1%}).",
            [Q(f"max({sli_record(AVAILABILITY, '1h')}{{{SEL}}})", "failed")],
            "percentunit",
            decimals=2,
            steps=thresholds(
                (None, "green"), (AVAILABILITY.budget, "yellow"), (AVAILABILITY.budget * 14.4, "red")
            ),
        ),
        stat_panel(
            "Worst feature drift (PSI)",
            "The highest feature PSI of any selected model.",
            [Q(f"max(model_server_feature_drift_psi{{{SEL}}})", "PSI")],
            "none",
            decimals=3,
            steps=PSI_STEPS,
        ),
        stat_panel(
            "Firing alerts",
            "ModelServer* alerts firing now for the selected models.",
            [Q(f"count({ALERTS}) or vector(0)", "alerts")],
            "short",
            steps=thresholds((None, "green"), (1, "red")),
        ),
        table_panel(
            "Models",
            "One row per model: ready pods, traffic, SLIs over the last hour, p99 latency, worst drift "
            "and the error budget left. Click a model to open its dashboard.",
            [
                Q(f"sum by ({by}) (model_server_model_ready{{{SEL}}})", instant=True, table=True),
                Q(f"sum by ({by}) ({RATE}{{{SEL}}})", instant=True, table=True),
                Q(f"{sli_record(AVAILABILITY, '1h')}{{{SEL}}}", instant=True, table=True),
                Q(f"{sli_record(LATENCY, '1h')}{{{SEL}}}", instant=True, table=True),
                Q(
                    f"histogram_quantile(0.99, sum by ({by}, le) ({BUCKETS}{{{SEL}}}))",
                    instant=True,
                    table=True,
                ),
                Q(f"max by ({by}) (model_server_feature_drift_psi{{{SEL}}})", instant=True, table=True),
                Q(
                    f"1 - {sli_record(AVAILABILITY, '30d')}{{{SEL}}} / {AVAILABILITY.budget:g}",
                    instant=True,
                    table=True,
                ),
            ],
            h=9,
            organize={
                "excludeByName": {"Time": True},
                "renameByName": {
                    "Value #A": "ready pods",
                    "Value #B": "requests/s",
                    "Value #C": "failed (1h)",
                    "Value #D": "slow (1h)",
                    "Value #E": "p99 latency",
                    "Value #F": "worst PSI",
                    "Value #G": "budget left (30d)",
                },
            },
            units={
                "requests/s": "reqps",
                "failed (1h)": "percentunit",
                "slow (1h)": "percentunit",
                "p99 latency": "s",
                "budget left (30d)": "percentunit",
            },
        ).override_by_name(
            "model",
            [
                DynamicConfigValue(
                    id_val="links", value=[{"title": "Open the model dashboard", "url": MODEL_LINK}]
                )
            ],
        ),
        table_panel(
            "Versions by namespace",
            "Which model version runs where (pods per version): the rollout state across environments.",
            [
                Q(
                    f"count by ({by}, model_version) (model_server_model_info{{{SEL}}})",
                    instant=True,
                    table=True,
                )
            ],
            w=12,
            organize={"excludeByName": {"Time": True}, "renameByName": {"Value": "pods"}},
        ),
        table_panel(
            "Firing alerts",
            "ModelServer* alerts firing now, with their severity.",
            [Q(f"max by (alertname, severity, {by}) ({ALERTS})", instant=True, table=True)],
            w=12,
            organize={"excludeByName": {"Time": True, "Value": True}},
        ),
    ]


def _traffic() -> list[Any]:
    return [
        row("Traffic, errors and latency across models"),
        timeseries_panel(
            "Prediction requests/s by model",
            "Traffic per model and namespace.",
            [Q(f"sum by (namespace, model) ({RATE}{{{SEL}}})", "{{namespace}}/{{model}}")],
            "reqps",
        ),
        timeseries_panel(
            "Failed requests (SLO) by model",
            "Availability error ratio over 5 minutes.",
            [Q(f"{sli_record(AVAILABILITY, '5m')}{{{SEL}}}", "{{namespace}}/{{model}}")],
            "percentunit",
            steps=thresholds((None, "green"), (AVAILABILITY.budget, "red")),
        ),
        timeseries_panel(
            "p99 latency by model",
            "99th percentile of prediction latency.",
            [
                Q(
                    f"histogram_quantile(0.99, sum by (namespace, model, le) ({BUCKETS}{{{SEL}}}))",
                    "{{namespace}}/{{model}}",
                )
            ],
            "s",
        ),
        timeseries_panel(
            "Shed and timed-out requests by model",
            "429 (overloaded) and 504 (deadline) per second: the "
            "model needs more replicas or a higher limit.",
            [
                Q(
                    "sum by (namespace, model, kind) (rate(model_server_prediction_errors_total{"
                    f'{SEL}, kind=~"overloaded|deadline_exceeded"}}[$__rate_interval]))',
                    "{{namespace}}/{{model}} {{kind}}",
                )
            ],
            "reqps",
        ),
    ]


def _slo_and_drift() -> list[Any]:
    return [
        row("SLO burn and drift across models"),
        timeseries_panel(
            "Availability burn rate (1h)",
            "1 spends exactly the 30-day budget; the fast alert pages at 14.4.",
            [
                Q(
                    f"{sli_record(AVAILABILITY, '1h')}{{{SEL}}} / {AVAILABILITY.budget:g}",
                    "{{namespace}}/{{model}}",
                )
            ],
            "x",
        ),
        timeseries_panel(
            "Latency burn rate (1h)",
            "Share of slow requests over the budget's share.",
            [Q(f"{sli_record(LATENCY, '1h')}{{{SEL}}} / {LATENCY.budget:g}", "{{namespace}}/{{model}}")],
            "x",
        ),
        timeseries_panel(
            "Worst feature drift (PSI) by model",
            "Highest feature PSI per model.",
            [
                Q(
                    f"max by (namespace, model) (model_server_feature_drift_psi{{{SEL}}})",
                    "{{namespace}}/{{model}}",
                )
            ],
            "none",
            steps=PSI_STEPS,
        ),
        timeseries_panel(
            "Prediction drift (PSI) by model",
            "PSI of predictions per model.",
            [
                Q(
                    f"max by (namespace, model) (model_server_prediction_drift_psi{{{SEL}}})",
                    "{{namespace}}/{{model}}",
                )
            ],
            "none",
            steps=PSI_STEPS,
        ),
    ]


def _capacity() -> list[Any]:
    cpu = 'rate(container_cpu_usage_seconds_total{container!="", container!="POD"}[$__rate_interval])'
    return [
        row("Capacity across models"),
        timeseries_panel(
            "Ready pods by model",
            "Pods serving each model.",
            [Q(f"sum by (namespace, model) (model_server_model_ready{{{SEL}}})", "{{namespace}}/{{model}}")],
            "short",
            w=8,
        ),
        timeseries_panel(
            "CPU cores by model",
            "CPU used by all pods of each model (cAdvisor).",
            [
                Q(
                    f"sum by (namespace, model) (\n  {cpu}\n  * on (namespace, pod) group_left (model)\n"
                    f"  {POD_MODEL_INFO}{{{SEL}}}\n)",
                    "{{namespace}}/{{model}}",
                )
            ],
            "cores",
            w=8,
        ),
        timeseries_panel(
            "Autoscaler headroom by model",
            "Current replicas as a share of the HPA maximum; at 100% the "
            "model cannot scale further (ModelServerHPAAtMax).",
            [
                Q(
                    "max by (namespace, model) (\n"
                    "  (kube_horizontalpodautoscaler_status_current_replicas\n"
                    "   / on (namespace, horizontalpodautoscaler)\n"
                    "   kube_horizontalpodautoscaler_spec_max_replicas)\n"
                    "  * on (namespace, horizontalpodautoscaler) group_left (model)\n"
                    f"  {HPA_MODEL_INFO}{{{SEL}}}\n)",
                    "{{namespace}}/{{model}}",
                )
            ],
            "percentunit",
            w=8,
            max_=1,
        ),
    ]


def dashboard() -> dict[str, Any]:
    board = (
        db.Dashboard("Model server / Platform")
        .uid(UID)
        .tags(["model-server"])
        .editable()
        .description("Every model across namespaces: fleet health, SLOs, drift and capacity.")
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(
            db.DashboardLink("Model server dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["model-server"])
            .as_dropdown(False)
            .include_vars(False)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
        .with_variable(
            query_variable(
                "namespace",
                "Namespace",
                "label_values(model_server_model_info, namespace)",
                multi=True,
                include_all=True,
            )
        )
        .with_variable(
            query_variable(
                "model",
                "Model",
                'label_values(model_server_model_info{namespace=~"$namespace"}, model)',
                multi=True,
                include_all=True,
            )
        )
    )
    for section in (_fleet, _traffic, _slo_and_drift, _capacity):
        for item in section():
            board = board.with_row(item) if isinstance(item, db.Row) else board.with_panel(item)
    return finish(board)
