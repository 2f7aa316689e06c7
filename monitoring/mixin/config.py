"""Everything the dashboards, rules and adapter rule share: selectors, SLO targets, thresholds, links.

One module, so that an SLO target or the set of prediction endpoints is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_server.runtime.drift import PSI_MODERATE, PSI_SIGNIFICANT

# Target labels Prometheus attaches (docs/design/contracts.md, "Labels"): the chart's ServiceMonitor
# copies the pod labels model-server.io/model and model-server.io/model-version; Prometheus adds
# namespace and pod.
MODEL_LABELS = ("namespace", "model")
BY_MODEL = "namespace, model"

# Prediction endpoints, as the server's `route` label (the route template) names them. Health,
# metadata and metrics calls are excluded: they are not what a user of the model waits for. (The label
# is not called `endpoint`: the Prometheus Operator sets that target label to the port name, which
# would rename the server's to `exported_endpoint`; see model_server/metrics.py.) Over gRPC the route is
# the method's full name, and its `code` the HTTP status of the same answer, so every selector on `code`
# below covers both transports.
PREDICTION = (
    'route=~"/predict|/v1/models/.+:predict|/v2/models/.+/infer|/inference.GRPCInferenceService/ModelInfer"'
)

# Availability SLI: of the valid prediction requests, the share the server failed.
# - Client errors (4xx) are excluded from both sides: a client sending a wrong feature says nothing
#   about the service, and counting it as "good" would let bad clients dilute real failures.
# - 429 (shed under overload) is the exception: the client did nothing wrong, the service refused it.
#   Likewise 503 (not ready, draining) and 504 (deadline) are 5xx and count against the SLO.
BAD_CODES = 'code=~"5..|429"'
VALID_CODES = 'code=~"[1235]..|429"'

# The bucket edge that defines a "fast enough" answer (must be one of metrics.LATENCY_BUCKETS).
LATENCY_THRESHOLD_SECONDS = 0.25

# kube-state-metrics turns the pod and HPA label model-server.io/model into this label when its
# --metric-labels-allowlist names it (monitoring/values/kube-prometheus-stack.yaml does).
KSM_MODEL_LABEL = "label_model_server_io_model"
KSM_VERSION_LABEL = "label_model_server_io_model_version"

RUNBOOK_URL = "https://github.com/model-server/model-server/blob/main/monitoring/RUNBOOK.md"

DRIFT_WARN = PSI_MODERATE
DRIFT_ALERT = PSI_SIGNIFICANT


@dataclass(frozen=True)
class SLO:
    name: str  # availability | latency
    objective: float  # share of good events over the SLO period
    period: str
    description: str

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 10)


AVAILABILITY = SLO(
    "availability",
    0.999,
    "30d",
    "99.9% of valid prediction requests (client errors excluded) are answered without a 5xx or a 429.",
)
LATENCY = SLO(
    "latency",
    0.99,
    "30d",
    f"99% of prediction requests are answered within {int(LATENCY_THRESHOLD_SECONDS * 1000)} ms.",
)
SLOS = (AVAILABILITY, LATENCY)


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window multi-burn-rate condition (Google SRE workbook, chapter 5, table 5-8)."""

    long: str
    short: str
    factor: float  # burn rate: 1 = spending exactly the budget over the whole period
    severity: str  # critical pages, warning opens a ticket


# Page: 2% of the 30-day budget spent in 1h, or 5% in 6h. Ticket: 10% in 1d, or 10% in 3d.
FAST_BURN = (BurnWindow("1h", "5m", 14.4, "critical"), BurnWindow("6h", "30m", 6, "critical"))
SLOW_BURN = (BurnWindow("1d", "2h", 3, "warning"), BurnWindow("3d", "6h", 1, "warning"))
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BUDGET_WINDOW = "30d"


def sli_record(slo: SLO, window: str) -> str:
    """Name of the recorded error ratio of ``slo`` over ``window`` (level:metric:operations)."""
    return f"namespace_model:model_server_{slo.name}_errors:ratio_rate{window}"


POD_MODEL_INFO = "namespace_pod:model_server_model:info"
HPA_MODEL_INFO = "namespace_horizontalpodautoscaler:model_server_model:info"


# Canary analysis (charts/model-server, `rollout.strategy: canary`; mixin/analysis.py). A canary fails
# its analysis when it burns an SLO's error budget at the page-now rate (the first FAST_BURN window's
# factor, 14.4: 2% of a 30-day budget in an hour), when its predicted classes differ from the stable
# version's on the same traffic by a PSI of DRIFT_ALERT or more, or when its mean top-class confidence
# is CANARY_CONFIDENCE_DROP below the stable version's.
CANARY_BURN_FACTOR = FAST_BURN[0].factor
CANARY_CONFIDENCE_DROP = 0.1
# Fewer predicted rows than this in the window and the class PSI is not judged: with a handful of rows
# the shares are noise (20 rows of three balanced classes already give PSI ~0.05).
CANARY_MIN_ROWS = 100
