"""Recording and alerting rules for every model the platform serves, as one Prometheus rule file.

Every alert aggregates ``by (namespace, model)`` (the target labels), carries a ``severity``
(critical pages, warning opens a ticket), a summary, a description and a ``runbook_url`` that points at
its own section of monitoring/RUNBOOK.md (a test checks the section exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import (
    BAD_CODES,
    BUDGET_WINDOW,
    BY_MODEL,
    DRIFT_ALERT,
    FAST_BURN,
    HPA_MODEL_INFO,
    KSM_MODEL_LABEL,
    KSM_VERSION_LABEL,
    LATENCY_THRESHOLD_SECONDS,
    POD_MODEL_INFO,
    PREDICTION,
    RUNBOOK_URL,
    SLI_WINDOWS,
    SLO,
    SLOS,
    SLOW_BURN,
    VALID_CODES,
    BurnWindow,
    sli_record,
)

REQUESTS = "model_server_requests_total"
DURATION = "model_server_request_duration_seconds"


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def sli_expr(slo: SLO, window: str) -> str:
    if slo.name == "availability":
        valid = f"sum by ({BY_MODEL}) (rate({REQUESTS}{{{PREDICTION}, {VALID_CODES}}}[{window}]))"
        # `or 0 * valid`: a model that never failed has no 5xx/429 series at all, and its SLI must
        # read 0, not vanish.
        return (
            f"(\n"
            f"  sum by ({BY_MODEL}) (rate({REQUESTS}{{{PREDICTION}, {BAD_CODES}}}[{window}]))\n"
            f"  or\n"
            f"  0 * {valid}\n"
            f")\n"
            f"/\n"
            f"{valid}"
        )
    le = f'le="{LATENCY_THRESHOLD_SECONDS:g}"'
    return (
        f"1 - (\n"
        f"  sum by ({BY_MODEL}) (rate({DURATION}_bucket{{{PREDICTION}, {le}}}[{window}]))\n"
        f"  /\n"
        f"  sum by ({BY_MODEL}) (rate({DURATION}_count{{{PREDICTION}}}[{window}]))\n"
        f")"
    )


def recording_groups() -> list[dict[str, Any]]:
    sli = [{"record": sli_record(slo, w), "expr": sli_expr(slo, w)} for slo in SLOS for w in SLI_WINDOWS]
    dashboards = [
        {
            "record": "namespace_model_code:model_server_requests:rate5m",
            "expr": f"sum by ({BY_MODEL}, code) (rate({REQUESTS}{{{PREDICTION}}}[5m]))",
        },
        {
            "record": "namespace_model_le:model_server_request_duration_seconds_bucket:rate5m",
            "expr": f"sum by ({BY_MODEL}, le) (rate({DURATION}_bucket{{{PREDICTION}}}[5m]))",
        },
    ]
    kubernetes = [
        {
            "record": POD_MODEL_INFO,
            "expr": (
                "max by (namespace, pod, model, model_version) (\n"
                "  label_replace(\n"
                "    label_replace(\n"
                f'      kube_pod_labels{{{KSM_MODEL_LABEL}!=""}},\n'
                f'      "model", "$1", "{KSM_MODEL_LABEL}", "(.*)"\n'
                "    ),\n"
                f'    "model_version", "$1", "{KSM_VERSION_LABEL}", "(.*)"\n'
                "  )\n"
                ")"
            ),
        },
        {
            "record": HPA_MODEL_INFO,
            "expr": (
                "max by (namespace, horizontalpodautoscaler, model) (\n"
                "  label_replace(\n"
                f'    kube_horizontalpodautoscaler_labels{{{KSM_MODEL_LABEL}!=""}},\n'
                f'    "model", "$1", "{KSM_MODEL_LABEL}", "(.*)"\n'
                "  )\n"
                ")"
            ),
        },
    ]
    return [
        {"name": "model-server-sli.rules", "rules": sli + dashboards},
        # The 30-day error ratios feed only the "budget left" panels: reading 30 days of samples every
        # 5 minutes is plenty for a number that moves over days.
        {
            "name": "model-server-slo-budget.rules",
            "interval": "5m",
            "rules": [
                {"record": sli_record(slo, BUDGET_WINDOW), "expr": sli_expr(slo, BUDGET_WINDOW)}
                for slo in SLOS
            ],
        },
        {"name": "model-server-kubernetes.rules", "rules": kubernetes},
    ]


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0m"
    labels: dict[str, str] = field(default_factory=dict)

    def rule(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            out["for"] = self.for_
        out["labels"] = {"severity": self.severity, **self.labels}
        out["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{RUNBOOK_URL}#{self.name.lower()}",
        }
        return out


def _burn_expr(slo: SLO, windows: tuple[BurnWindow, ...]) -> str:
    parts = [
        f"(\n  {sli_record(slo, w.long)} > ({w.factor:g} * {slo.budget:g})\n"
        f"and\n  {sli_record(slo, w.short)} > ({w.factor:g} * {slo.budget:g})\n)"
        for w in windows
    ]
    return "\nor\n".join(parts)


def _burn_alerts(slo: SLO) -> list[Alert]:
    what = {
        "availability": "of valid prediction requests fail (5xx or shed with 429)",
        "latency": f"of prediction requests take longer than {LATENCY_THRESHOLD_SECONDS:g} s",
    }[slo.name]
    out = []
    for speed, windows, for_ in (("Fast", FAST_BURN, "2m"), ("Slow", SLOW_BURN, "15m")):
        spans = " or ".join(f"{w.long}/{w.short} at {w.factor:g}x" for w in windows)
        share = (
            "2% of the 30-day error budget in 1h or 5% in 6h"
            if speed == "Fast"
            else ("10% of the 30-day error budget in 1d or in 3d")
        )
        out.append(
            Alert(
                name=f"ModelServer{slo.name.capitalize()}BudgetBurn{speed}",
                expr=_burn_expr(slo, windows),
                severity=windows[0].severity,
                for_=for_,
                labels={"slo": slo.name},
                summary=f"Model {{{{ $labels.model }}}} in {{{{ $labels.namespace }}}} is burning its "
                f"{slo.name} "
                f"error budget {'fast' if speed == 'Fast' else 'steadily'} ({spans}).",
                description=(
                    f"{{{{ $value | humanizePercentage }}}} {what} over the long window; the SLO allows "
                    f"{_pct(slo.budget)} ({_pct(slo.objective)} over {slo.period}). At this rate the model "
                    f"spends {share}."
                ),
            )
        )
    return out


def alerts() -> list[Alert]:
    ready = "model_server_model_ready"
    pred = f"{REQUESTS}{{{PREDICTION}}}"
    out = [*_burn_alerts(SLOS[0]), *_burn_alerts(SLOS[1])]
    out += [
        Alert(
            name="ModelServerModelUnavailable",
            # A pod whose scrape fails (crashed, hung) counts as not ready rather than vanishing.
            expr=(
                f"sum by ({BY_MODEL}) (\n"
                f"  max by (namespace, model, pod) ({ready})\n"
                f"  or on (namespace, model, pod)\n"
                f'  0 * max by (namespace, model, pod) (up{{model!=""}})\n'
                f") == 0"
            ),
            severity="critical",
            for_="5m",
            summary="No pod of model {{ $labels.model }} in {{ $labels.namespace }} is ready.",
            description="Every scraped pod of the model reports model_server_model_ready 0 or cannot be "
            "scraped: prediction requests fail or have nowhere to go.",
        ),
        Alert(
            name="ModelServerPodNotReady",
            expr=f"max by ({BY_MODEL}, model_version, pod) ({ready}) == 0",
            severity="warning",
            for_="15m",
            summary="Pod {{ $labels.pod }} ({{ $labels.model }} {{ $labels.model_version }}) has not "
            "loaded its model for 15 minutes.",
            description="The process is alive but not ready: its bundle is missing, corrupt, untrusted or "
            "not the expected name/version. /readyz on the pod says why.",
        ),
        Alert(
            name="ModelServerNoTraffic",
            # `or 0 * ready`: a pod that restarted has no prediction series until its first request.
            expr=(
                f"(\n"
                f"  sum by ({BY_MODEL}) (rate({pred}[15m]))\n"
                f"  or on ({BY_MODEL})\n"
                f"  0 * sum by ({BY_MODEL}) ({ready})\n"
                f") == 0\n"
                f"and on ({BY_MODEL})\n"
                f"  (sum by ({BY_MODEL}) ({ready}) > 0)\n"
                f"and on ({BY_MODEL})\n"
                f"  (sum by ({BY_MODEL}) (increase({pred}[1d])) > 0)"
            ),
            severity="warning",
            for_="15m",
            summary="Model {{ $labels.model }} in {{ $labels.namespace }} is ready but has received no "
            "prediction request for 30 minutes.",
            description="It did serve traffic in the last day. Clients may be failing before they reach "
            "the pods (Ingress, NetworkPolicy, DNS, a client release).",
        ),
        # A pod whose drift window is not full enough to score exports NaN ("not computed yet"), and an
        # average over a NaN is NaN: `>= 0` (PSI never is negative) keeps only computed scores, so a
        # fresh pod neither hides the others' shift nor, alone, fires.
        Alert(
            name="ModelServerFeatureDrift",
            expr=(
                f"avg by ({BY_MODEL}, model_version, feature) (model_server_feature_drift_psi >= 0)"
                f" > {DRIFT_ALERT:g}"
            ),
            severity="warning",
            for_="30m",
            summary="Input feature {{ $labels.feature }} of {{ $labels.model }} in {{ $labels.namespace }} "
            "no longer looks like the training data.",
            description=f"Its Population Stability Index over the recent window is {{{{ $value | "
            f'printf "%.2f" }}}} (above {DRIFT_ALERT:g}: a significant shift). Predictions may '
            f"be less accurate than at training time.",
        ),
        Alert(
            name="ModelServerPredictionDrift",
            expr=(
                f"avg by ({BY_MODEL}, model_version) (model_server_prediction_drift_psi >= 0)"
                f" > {DRIFT_ALERT:g}"
            ),
            severity="warning",
            for_="30m",
            summary="Predictions of {{ $labels.model }} in {{ $labels.namespace }} are distributed unlike "
            "the predictions on the training data.",
            description=f"The Population Stability Index of recent predictions is {{{{ $value | "
            f'printf "%.2f" }}}} (above {DRIFT_ALERT:g}).',
        ),
        Alert(
            name="ModelServerPodRestarting",
            expr=(
                "sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[1h]))\n"
                f"* on (namespace, pod) group_left (model, model_version) {POD_MODEL_INFO}\n"
                "> 2"
            ),
            severity="warning",
            summary='Pod {{ $labels.pod }} of {{ $labels.model }} restarted {{ $value | printf "%.0f" }} '
            "times in the last hour.",
            description="Containers of the pod keep restarting: out of memory (large batches), liveness "
            "probe failures under load, or a crash at start.",
        ),
        Alert(
            name="ModelServerHPAAtMax",
            # An HPA whose min equals its max is pinned on purpose: not an alert.
            expr=(
                "(\n"
                "  (\n"
                "    kube_horizontalpodautoscaler_status_current_replicas\n"
                "    >= on (namespace, horizontalpodautoscaler)\n"
                "    kube_horizontalpodautoscaler_spec_max_replicas\n"
                "  )\n"
                "  unless on (namespace, horizontalpodautoscaler)\n"
                "  (\n"
                "    kube_horizontalpodautoscaler_spec_max_replicas\n"
                "    == on (namespace, horizontalpodautoscaler)\n"
                "    kube_horizontalpodautoscaler_spec_min_replicas\n"
                "  )\n"
                ")\n"
                f"* on (namespace, horizontalpodautoscaler) group_left (model) {HPA_MODEL_INFO}"
            ),
            severity="warning",
            for_="15m",
            summary="The autoscaler of {{ $labels.model }} in {{ $labels.namespace }} has been at its "
            "maximum of {{ $value }} replicas for 15 minutes.",
            description="Demand may exceed what the model is allowed to scale to; latency and 429s follow.",
        ),
    ]
    return out


def rule_file() -> dict[str, Any]:
    return {
        "groups": [
            *recording_groups(),
            {"name": "model-server.alerts", "rules": [a.rule() for a in alerts()]},
        ]
    }
