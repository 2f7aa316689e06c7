"""The one-model dashboard: is this model healthy, fast, and still seeing the data it was trained on?

Pick a namespace (environment), a model and one or more versions; each row answers one question
(its title). docs/operations/monitoring.md lists the rows.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DashboardLinkType

from ..config import (
    AVAILABILITY,
    BAD_CODES,
    DRIFT_ALERT,
    DRIFT_WARN,
    FAST_BURN,
    HPA_MODEL_INFO,
    LATENCY,
    LATENCY_THRESHOLD_SECONDS,
    POD_MODEL_INFO,
    PREDICTION,
    SLOW_BURN,
    VALID_CODES,
    sli_record,
)
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

UID = "model-server-model"
SEL = 'namespace="$namespace", model="$model", model_version=~"$version"'
# Recorded SLIs are aggregated by (namespace, model): all versions together, as the SLO is.
SEL_MODEL = 'namespace="$namespace", model="$model"'
RI = "$__rate_interval"
REQ = "model_server_requests_total"
DUR = "model_server_request_duration_seconds"

PSI_STEPS = thresholds((None, "green"), (DRIFT_WARN, "yellow"), (DRIFT_ALERT, "red"))
BURN_STEPS = thresholds(
    (None, "green"),
    *[
        (w.factor, c)
        for w, c in zip((*SLOW_BURN, *FAST_BURN), ("blue", "yellow", "orange", "red"), strict=True)
    ],
)


def _by_pod(metric_expr: str, by: str = "pod") -> str:
    """Join a cAdvisor / kube-state-metrics series (namespace, pod labels) to the selected model."""
    return (
        f"sum by ({by}) (\n  {metric_expr}\n  * on (namespace, pod) group_left (model, model_version)\n"
        f"  {POD_MODEL_INFO}{{{SEL}}}\n)"
    )


def _resource(kind: str, resource: str) -> str:
    """The container's requests or limits (identical across pods of one version: the max of them)."""
    series = "kube_pod_container_resource_" + kind + '{resource="' + resource + '"}'
    return f"max(\n{_by_pod(series)}\n)"


def _hpa(metric: str) -> str:
    return (
        f"max(\n  {metric}\n  * on (namespace, horizontalpodautoscaler) group_left (model)\n"
        f"  {HPA_MODEL_INFO}{{{SEL_MODEL}}}\n)"
    )


def _quantile(q: float, hist: str, extra: str = "", by: str = "le") -> str:
    sel = f"{SEL}, {extra}" if extra else SEL
    return f"histogram_quantile({q:g}, sum by ({by}) (rate({hist}_bucket{{{sel}}}[{RI}])))"


def _share(part: str, whole: str) -> str:
    """part / whole of prediction requests; 0 (not "no data") when no request matches ``part``."""
    total = f"sum(rate({REQ}{{{SEL}, {PREDICTION}{whole}}}[{RI}]))"
    return f"(\n  sum(rate({REQ}{{{SEL}, {PREDICTION}, {part}}}[{RI}]))\n  or 0 * {total}\n)\n/\n{total}"


FAILED = _share(BAD_CODES, f", {VALID_CODES}")
CLIENT_ERRORS = _share('code=~"4..", code!="429"', "")


def _overview() -> list[Any]:
    return [
        row("Overview: is the model healthy right now?"),
        stat_panel(
            "Prediction requests/s",
            "Prediction requests answered per second, every status.",
            [Q(f"sum(rate({REQ}{{{SEL}, {PREDICTION}}}[{RI}]))", "requests/s")],
            "reqps",
        ),
        stat_panel(
            "Failed requests (SLO)",
            "Share of valid prediction requests that failed (5xx, or shed with 429). Client errors (4xx) "
            f"are excluded. The availability SLO allows {AVAILABILITY.budget:.1%}.",
            [Q(FAILED, "failed")],
            "percentunit",
            decimals=2,
            steps=thresholds(
                (None, "green"), (AVAILABILITY.budget, "yellow"), (AVAILABILITY.budget * 10, "red")
            ),
        ),
        stat_panel(
            "p99 latency",
            f"99th percentile of prediction request latency; the latency SLO wants 99% under "
            f"{LATENCY_THRESHOLD_SECONDS:g} s.",
            [Q(_quantile(0.99, DUR, PREDICTION), "p99")],
            "s",
            steps=thresholds(
                (None, "green"), (LATENCY_THRESHOLD_SECONDS / 2, "yellow"), (LATENCY_THRESHOLD_SECONDS, "red")
            ),
        ),
        stat_panel(
            "Ready pods",
            "Pods that loaded and warmed up the model, out of the pods Prometheus scrapes.",
            [
                Q(f"sum(model_server_model_ready{{{SEL}}})", "ready"),
                Q(f"count(model_server_model_ready{{{SEL}}})", "scraped"),
            ],
            "short",
            steps=thresholds((None, "red"), (1, "green")),
        ),
        stat_panel(
            "Worst feature drift (PSI)",
            f"Highest Population Stability Index of any input feature: below {DRIFT_WARN:g} no shift, "
            f"{DRIFT_WARN:g}-{DRIFT_ALERT:g} moderate, above {DRIFT_ALERT:g} significant (alert).",
            [Q(f"max(model_server_feature_drift_psi{{{SEL}}})", "PSI")],
            "none",
            decimals=3,
            steps=PSI_STEPS,
        ),
        stat_panel(
            "Error budget left (30d)",
            "Share of the 30-day error budget not yet spent, per SLO (below zero: SLO missed).",
            [
                Q(f"1 - {sli_record(slo, '30d')}{{{SEL_MODEL}}} / {slo.budget:g}", slo.name)
                for slo in (AVAILABILITY, LATENCY)
            ],
            "percentunit",
            decimals=1,
            steps=thresholds((None, "red"), (0.25, "yellow"), (0.5, "green")),
        ),
    ]


def _traffic() -> list[Any]:
    return [
        row("Traffic and errors: how much, and what fails?"),
        timeseries_panel(
            "Prediction requests by status code",
            "Rate of prediction requests per HTTP status; 4xx are the clients' errors, 429/5xx ours.",
            [Q(f"sum by (code) (rate({REQ}{{{SEL}, {PREDICTION}}}[{RI}]))", "{{code}}")],
            "reqps",
            stack=True,
        ),
        timeseries_panel(
            "Requests by protocol and route",
            "Which API clients use (named JSON, Open Inference V2, KServe V1), health and "
            "metadata calls included.",
            [
                Q(
                    f'sum by (protocol, route) (rate({REQ}{{{SEL}, protocol!="ops"}}[{RI}]))',
                    "{{protocol}} {{route}}",
                )
            ],
            "reqps",
            stack=True,
        ),
        timeseries_panel(
            "Errors by kind",
            "Rejected or failed prediction requests by reason: invalid_input and friends are "
            "client errors; overloaded (429), deadline_exceeded (504), not_ready (503) and "
            "model_error (500) count against the SLO.",
            [Q(f"sum by (kind) (rate(model_server_prediction_errors_total{{{SEL}}}[{RI}]))", "{{kind}}")],
            "reqps",
            stack=True,
        ),
        timeseries_panel(
            "Error ratios",
            "Failed: share of valid requests that failed (the availability SLI). Client errors: share of "
            "all prediction requests rejected as the client's fault (not in the SLO).",
            [
                Q(FAILED, "failed (SLO)"),
                Q(CLIENT_ERRORS, "client errors"),
            ],
            "percentunit",
            steps=thresholds((None, "green"), (AVAILABILITY.budget, "red")),
        ),
    ]


def _latency() -> list[Any]:
    return [
        row("Latency: how fast, and where does the time go?"),
        timeseries_panel(
            "Prediction latency p50 / p95 / p99",
            f"Percentiles of the whole request, from the histogram summed over pods. The latency SLO "
            f"threshold ({LATENCY_THRESHOLD_SECONDS:g} s) is the red line.",
            [Q(_quantile(q, DUR, PREDICTION), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
            "s",
            steps=thresholds((None, "green"), (LATENCY_THRESHOLD_SECONDS, "red")),
        ),
        timeseries_panel(
            "Model call vs whole request (p99)",
            "Where the time goes: the model call itself, the wait in the micro-batch queue, and the whole "
            "request (parsing, validation, queueing, encoding). A gap between model and request means the "
            "time is spent outside the model.",
            [
                Q(_quantile(0.99, DUR, PREDICTION), "request p99"),
                Q(
                    _quantile(0.99, "model_server_inference_duration_seconds", by="le, method"),
                    "model {{method}} p99",
                ),
                Q(_quantile(0.99, "model_server_batch_queue_wait_seconds"), "batch queue wait p99"),
            ],
            "s",
        ),
        timeseries_panel(
            "In-flight requests by pod",
            "Prediction requests being processed; at MAX_IN_FLIGHT the pod sheds with 429.",
            [Q(f"sum by (pod) (model_server_requests_in_flight{{{SEL}}})", "{{pod}}")],
            "short",
        ),
        timeseries_panel(
            "Rows per model call (batch size)",
            "How well micro-batching gathers rows: rows per model call (after batching) against rows per "
            "request (before).",
            [
                Q(_quantile(0.5, "model_server_batch_rows"), "rows per call p50"),
                Q(_quantile(0.95, "model_server_batch_rows"), "rows per call p95"),
                Q(
                    f"sum(rate(model_server_batch_rows_sum{{{SEL}}}[{RI}]))\n/\n"
                    f"sum(rate(model_server_batch_rows_count{{{SEL}}}[{RI}]))",
                    "rows per call mean",
                ),
                Q(
                    f"sum(rate(model_server_request_rows_sum{{{SEL}}}[{RI}]))\n/\n"
                    f"sum(rate(model_server_request_rows_count{{{SEL}}}[{RI}]))",
                    "rows per request mean",
                ),
            ],
            "short",
        ),
        timeseries_panel(
            "Micro-batch queue by pod",
            "Rows waiting for a model call; near BATCH_QUEUE_ROWS the pod sheds with 429.",
            [Q(f"sum by (pod) (model_server_batch_queue_rows{{{SEL}}})", "{{pod}}")],
            "short",
        ),
        timeseries_panel(
            "Model calls per second",
            "Model calls by method (predict, predict_proba).",
            [
                Q(
                    f"sum by (method) (rate(model_server_inference_duration_seconds_count{{{SEL}}}[{RI}]))",
                    "{{method}}",
                )
            ],
            "ops",
        ),
    ]


def _slo() -> list[Any]:
    out: list[Any] = [row("SLO: how fast is the error budget burning?")]
    for slo in (AVAILABILITY, LATENCY):
        out.append(
            timeseries_panel(
                f"{slo.name.capitalize()} burn rate",
                f"{slo.description} Burn rate 1 spends exactly the 30-day budget; the alerts page at 14.4 "
                f"(1h and 5m) or 6 (6h and 30m) and open a ticket at 3 (1d and 2h) or 1 (3d and 6h).",
                [
                    Q(f"{sli_record(slo, w)}{{{SEL_MODEL}}} / {slo.budget:g}", f"over {w}")
                    for w in ("5m", "1h", "6h", "1d", "3d")
                ],
                "x",
                steps=BURN_STEPS,
            )
        )
    return out


def _predictions() -> list[Any]:
    cls = "model_server_predicted_class_total"
    conf = "model_server_prediction_confidence"
    # Three output panels side by side (a model fills the classifier pair or the regressor one), so the
    # drift panels below keep their places.
    return [
        row("Predictions and drift: does the traffic still look like the training data?"),
        timeseries_panel(
            "Predicted classes (classifiers)",
            "Share of predictions per class label.",
            [
                Q(
                    f"sum by (class_label) (rate({cls}{{{SEL}}}[{RI}]))\n"
                    "/ ignoring (class_label) group_left\n"
                    f"sum(rate({cls}{{{SEL}}}[{RI}]))",
                    "{{class_label}}",
                )
            ],
            "percentunit",
            stack=True,
            max_=1,
            w=8,
        ),
        timeseries_panel(
            "Confidence (classifiers)",
            "Top-class probability of each predicted row, per version: the mean, and the 10th percentile "
            "(a tenth of the rows were less sure than that). Only rows of model calls that computed "
            "probabilities count (some request in the micro-batch asked for them): no data while no "
            "request asks. A drop means the model is less sure of its traffic: look at drift, and after a "
            "rollout compare the versions.",
            [
                Q(
                    f"sum by (model_version) (rate({conf}_sum{{{SEL}}}[{RI}]))\n"
                    "/\n"
                    f"sum by (model_version) (rate({conf}_count{{{SEL}}}[{RI}]))",
                    "{{model_version}} mean",
                ),
                Q(_quantile(0.1, conf, by="le, model_version"), "{{model_version}} p10"),
            ],
            "percentunit",
            max_=1,
            w=8,
        ),
        timeseries_panel(
            "Predicted values (regressors)",
            "Quantiles of predicted values, from the output histogram "
            "(its buckets are the training predictions' deciles).",
            [Q(_quantile(q, "model_server_predicted_value"), f"p{round(q * 100)}") for q in (0.1, 0.5, 0.9)],
            "none",
            min_=None,
            w=8,
        ),
        timeseries_panel(
            "Feature drift (PSI) by feature",
            f"Population Stability Index of each input feature over the recent window against the training "
            f"data. Below {DRIFT_WARN:g}: no shift; {DRIFT_WARN:g}-{DRIFT_ALERT:g}: moderate; above "
            f"{DRIFT_ALERT:g}: significant (ModelServerFeatureDrift).",
            [Q(f"max by (feature) (model_server_feature_drift_psi{{{SEL}}})", "{{feature}}")],
            "none",
            steps=PSI_STEPS,
        ),
        timeseries_panel(
            "Prediction drift (PSI)",
            "PSI of recent predictions against the predictions on the training data.",
            [Q(f"max by (pod) (model_server_prediction_drift_psi{{{SEL}}})", "{{pod}}")],
            "none",
            steps=PSI_STEPS,
        ),
        timeseries_panel(
            "Drift window rows by pod",
            "Rows in each pod's drift window (DRIFT_WINDOW_ROWS at most). Scores appear once the window "
            "holds about 20 rows per bin; until then they are NaN, a gap in the drift panels.",
            [Q(f"sum by (pod) (model_server_drift_window_rows{{{SEL}}})", "{{pod}}")],
            "short",
            w=24,
            h=6,
        ),
    ]


def _capacity() -> list[Any]:
    cpu = 'rate(container_cpu_usage_seconds_total{container!="", container!="POD"}[$__rate_interval])'
    mem = 'container_memory_working_set_bytes{container!="", container!="POD"}'
    throttled = 'rate(container_cpu_cfs_throttled_periods_total{container!=""}[$__rate_interval])'
    periods = 'rate(container_cpu_cfs_periods_total{container!=""}[$__rate_interval])'
    return [
        row("Capacity (Kubernetes): replicas, autoscaler, CPU and memory"),
        timeseries_panel(
            "Ready pods by version",
            "Ready pods per model version (two during a rollout).",
            [Q(f"sum by (model_version) (model_server_model_ready{{{SEL}}})", "{{model_version}}")],
            "short",
            stack=True,
        ),
        timeseries_panel(
            "Autoscaler replicas",
            "The HorizontalPodAutoscaler's current and desired replicas against its "
            "bounds (kube-state-metrics).",
            [
                Q(_hpa("kube_horizontalpodautoscaler_status_current_replicas"), "current"),
                Q(_hpa("kube_horizontalpodautoscaler_status_desired_replicas"), "desired"),
                Q(_hpa("kube_horizontalpodautoscaler_spec_min_replicas"), "min"),
                Q(_hpa("kube_horizontalpodautoscaler_spec_max_replicas"), "max"),
            ],
            "short",
            dashed_regex="min|max",
        ),
        timeseries_panel(
            "CPU usage vs requests and limits",
            "Cores used per pod (cAdvisor) against the container's "
            "requests and limits (kube-state-metrics). Inference is CPU-bound: usage near the limit "
            "means throttling and slower answers.",
            [
                Q(_by_pod(cpu), "{{pod}}"),
                Q(_resource("requests", "cpu"), "request"),
                Q(_resource("limits", "cpu"), "limit"),
            ],
            "cores",
            dashed_regex="request|limit",
        ),
        timeseries_panel(
            "Memory working set vs requests and limits",
            "Memory per pod against requests and limits; at the limit the container is OOM-killed.",
            [
                Q(_by_pod(mem), "{{pod}}"),
                Q(_resource("requests", "memory"), "request"),
                Q(_resource("limits", "memory"), "limit"),
            ],
            "bytes",
            dashed_regex="request|limit",
        ),
        timeseries_panel(
            "CPU throttling",
            "Share of CPU periods in which the container was throttled.",
            [Q(f"{_by_pod(throttled)}\n/\n{_by_pod(periods)}", "{{pod}}")],
            "percentunit",
        ),
        timeseries_panel(
            "Container restarts (last hour)",
            "Restarts per pod over the past hour.",
            [Q(_by_pod("increase(kube_pod_container_status_restarts_total[1h])"), "{{pod}}")],
            "short",
        ),
    ]


def _model_in_use() -> list[Any]:
    labels = (
        "pod, model_version, bundle_name, bundle_version, task, sklearn_version, skops_version, "
        "numpy_version, server_version"
    )
    return [
        row("Model in use: which version, loaded how?"),
        table_panel(
            "Model version in use",
            "One row per pod: the version its deployment declares (model_version, from the pod label), "
            "the name and version the loaded bundle's metadata.json gives (bundle_name, bundle_version) "
            "and the library versions it runs with. The two versions differ only when the pod runs "
            "without MODEL_VERSION (which the chart sets, and the server then refuses other bundles).",
            [Q(f"max by ({labels}) (model_server_model_info{{{SEL}}})", instant=True, table=True)],
            w=16,
            organize={"excludeByName": {"Time": True, "Value": True}},
        ),
        timeseries_panel(
            "Model load time by pod",
            "Seconds the last model load took (verify, deserialize, "
            "warm up): what a new pod adds before it can serve.",
            [Q(f"max by (pod) (model_server_model_load_duration_seconds{{{SEL}}})", "{{pod}}")],
            "s",
            w=8,
        ),
    ]


def dashboard() -> dict[str, Any]:
    board = (
        db.Dashboard("Model server / Model")
        .uid(UID)
        .tags(["model-server"])
        .editable()
        .description("One model: traffic, errors, latency, SLO burn, predictions and drift, capacity.")
        .refresh("30s")
        .time("now-3h", "now")
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
            query_variable("namespace", "Namespace", "label_values(model_server_model_info, namespace)")
        )
        .with_variable(
            query_variable(
                "model", "Model", 'label_values(model_server_model_info{namespace="$namespace"}, model)'
            )
        )
        .with_variable(
            query_variable(
                "version",
                "Version",
                'label_values(model_server_model_info{namespace="$namespace", model="$model"},'
                " model_version)",
                multi=True,
                include_all=True,
            )
        )
    )
    for section in (_overview, _traffic, _latency, _slo, _predictions, _capacity, _model_in_use):
        for item in section():
            board = board.with_row(item) if isinstance(item, db.Row) else board.with_panel(item)
    return finish(board)
