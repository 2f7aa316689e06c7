"""Every Prometheus metric the server exports: the one source of truth for their names.

Dashboards, alert rules, the prometheus-adapter rule and the docs' metrics table are checked against
``METRIC_NAMES`` by the tests, so renaming a metric here breaks them loudly rather than silently.

Rules kept here:
- latencies are histograms (they aggregate across pods), never summaries;
- labels take values from small fixed sets (protocol, route template, status code, error kind,
  class label of the model, feature name of the model); never raw paths, ids or input values;
- the model's name and version are not labels on every series: Prometheus attaches them as target
  labels (`model`, `model_version`) from the pod labels the chart sets. ``model_info`` says what the
  loaded bundle's metadata.json names itself, as ``bundle_name`` and ``bundle_version``. Comparing
  ``bundle_version`` with ``model_version`` shows a pod whose bundle is not the version its
  deployment declares;
- no label the server writes may share a target label's name: with ``honor_labels: false`` (the
  default, and what the chart's ServiceMonitor uses) Prometheus keeps the target's value and renames
  the server's to ``exported_<name>``, so every query on the server's name silently matches nothing.
  Besides ``job`` and ``instance``, the Prometheus Operator gives every ServiceMonitor or PodMonitor
  target ``namespace``, ``pod``, ``container``, ``endpoint`` (the scraped port's name), and for a
  ServiceMonitor ``service`` (and ``node``). That is why the request metrics label the route
  template ``route``, not ``endpoint``: an ``endpoint`` label would arrive as ``exported_endpoint``
  in every cluster scraped by the operator, and in any scrape config that sets that target label.
  tests/integration/monitoring/test_stack_values.py checks these names against that list.

This module does not import the web framework: the runtime records into these objects too.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "model_server"

# Request latency buckets: sub-millisecond (micro-batched small models) up to the longest
# sensible deadline. Fixed so that histograms from every pod can be summed.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Rows per model call: powers of two up to the largest batch we allow by default.
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# Top-class probability of a classifier's row. Fixed (unlike the regressor's value buckets) so that pods
# and versions sum. A row's top class of k has at least 1/k (0.5 for two classes), so the low range is
# rare and tenths do; the finer edges sit where confident models put most rows, and 1.0 keeps (0.99, 1]
# in a finite bucket that histogram_quantile can interpolate in (the +Inf bucket would read as 0.99).
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

# Fixed vocabularies for labels (anything else is folded into "other").
# grpc: the Open Inference Protocol over gRPC; its `route` is the method's full name
# (/inference.GRPCInferenceService/ModelInfer) and its `code` the HTTP status of the same answer over
# REST (the gRPC status, e.g. INVALID_ARGUMENT for 400, is in the request's log line), so every rule and
# panel that reads `code` covers both transports.
PROTOCOLS = ("named", "v2", "v1", "grpc", "ops")
ERROR_KINDS = (
    "invalid_input",  # 400/422: missing, extra or mistyped feature, bad tensor, NaN where not allowed
    "unsupported_media_type",  # 415
    "payload_too_large",  # 413
    "too_many_rows",  # 413: batch over the row limit
    "not_found",  # 404: unknown model name or version
    "unauthorized",  # 401
    "overloaded",  # 429: in-flight limit or batch queue full
    "deadline_exceeded",  # 504: request took longer than its deadline
    "not_ready",  # 503: model not loaded yet, or draining
    "model_error",  # 500 from the model itself (a bug in the bundle, not the client)
)
# Above this many classes the per-class counter folds the rest into "other" (bounded cardinality).
MAX_CLASS_LABELS = 50


class Metrics:
    """The metric objects, bound to one registry (tests create their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        p = PREFIX
        self.requests = Counter(
            f"{p}_requests",
            "Requests answered (HTTP and gRPC), by protocol, route template and status code.",
            ["protocol", "route", "code"],
            registry=r,
        )
        self.request_duration = Histogram(
            f"{p}_request_duration_seconds",
            "Wall time from request received to response sent, by protocol and route template.",
            ["protocol", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            f"{p}_requests_in_flight",
            "Prediction requests being processed right now.",
            registry=r,
        )
        self.inference_duration = Histogram(
            f"{p}_inference_duration_seconds",
            "Time inside one model call (predict or predict_proba), batched rows included.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            f"{p}_batch_rows",
            "Rows passed to one model call (after micro-batching).",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.request_rows = Histogram(
            f"{p}_request_rows",
            "Rows in one prediction request, before micro-batching.",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_queue_wait = Histogram(
            f"{p}_batch_queue_wait_seconds",
            "Time a request's rows waited in the micro-batch queue before their model call started.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_queue_rows = Gauge(
            f"{p}_batch_queue_rows",
            "Rows waiting in the micro-batch queue.",
            registry=r,
        )
        self.prediction_errors = Counter(
            f"{p}_prediction_errors",
            "Rejected or failed prediction requests, by kind (see ERROR_KINDS).",
            ["kind"],
            registry=r,
        )
        self.predicted_class = Counter(
            f"{p}_predicted_class",
            "Predicted labels of a classifier, one per row.",
            ["class_label"],
            registry=r,
        )
        self.prediction_confidence = Histogram(
            f"{p}_prediction_confidence",
            "Top-class probability of each predicted row of a classifier. Observed only for model calls "
            "that computed probabilities anyway (some request in the micro-batch asked for them): "
            "predict_proba is never run just for this metric.",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        # Buckets are set from the bundle's reference prediction quantiles when a regressor loads.
        self.predicted_value: Histogram | None = None
        self.model_load_duration = Gauge(
            f"{p}_model_load_duration_seconds",
            "Seconds the last model load took (verify, deserialize, warm-up).",
            registry=r,
        )
        self.model_ready = Gauge(
            f"{p}_model_ready",
            "1 when the model is loaded, warmed up and accepting traffic, else 0.",
            registry=r,
        )
        self.model_info = Gauge(
            f"{p}_model_info",
            "Always 1; labels say which bundle (name and version from its metadata.json) and which "
            "library versions this process serves.",
            [
                "bundle_name",
                "bundle_version",
                "task",
                "sklearn_version",
                "skops_version",
                "numpy_version",
                "server_version",
            ],
            registry=r,
        )
        # Drift scores are NaN until computed, never 0: a 0 would read as "no drift" on the dashboards.
        # Prometheus stores NaN, Grafana draws a gap and every comparison with NaN is false, so no alert
        # fires on a score that does not exist yet (the rules drop NaN before averaging over pods).
        self.feature_drift = Gauge(
            f"{p}_feature_drift_psi",
            "Population Stability Index of the recent input window against the training reference. "
            "One series per feature once drift tracking starts; NaN until the window holds enough rows "
            "to score that feature; absent when drift tracking is off.",
            ["feature"],
            registry=r,
        )
        self.prediction_drift = Gauge(
            f"{p}_prediction_drift_psi",
            "Population Stability Index of recent predictions against the reference predictions. "
            "NaN until the window holds enough rows to score them, and while drift tracking is off.",
            registry=r,
        )
        self.prediction_drift.set(math.nan)
        self.drift_window_rows = Gauge(
            f"{p}_drift_window_rows",
            "Rows currently in the drift window.",
            registry=r,
        )

    def enable_predicted_value(self, buckets: tuple[float, ...]) -> Histogram:
        """Create the regressor output histogram once the model's output range is known."""
        if self.predicted_value is None:
            self.predicted_value = Histogram(
                f"{PREFIX}_predicted_value",
                "Predicted values of a regressor, one per row.",
                buckets=buckets,
                registry=self.registry,
            )
        return self.predicted_value


# Exported series names (as Prometheus sees them), for the tests that check dashboards and rules.
_HIST = (
    "request_duration_seconds",
    "inference_duration_seconds",
    "batch_rows",
    "request_rows",
    "batch_queue_wait_seconds",
    "predicted_value",
    "prediction_confidence",
)
METRIC_NAMES: frozenset[str] = frozenset(
    [f"{PREFIX}_{h}_{s}" for h in _HIST for s in ("bucket", "sum", "count")]
    + [f"{PREFIX}_{c}_total" for c in ("requests", "prediction_errors", "predicted_class")]
    + [
        f"{PREFIX}_{g}"
        for g in (
            "requests_in_flight",
            "batch_queue_rows",
            "model_load_duration_seconds",
            "model_ready",
            "model_info",
            "feature_drift_psi",
            "prediction_drift_psi",
            "drift_window_rows",
        )
    ]
)
