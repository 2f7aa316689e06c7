"""The canary analysis: what Argo Rollouts asks Prometheus about a new version's pods, per step.

The chart's AnalysisTemplate (charts/model-server/templates/analysistemplate.yaml) is built from the
file this renders (charts/model-server/files/canary-analysis.yaml), so its thresholds are the SLO
alerts' own (config.py) and its selectors the rules'. Queries name the canary's and the stable version's
pods by the target label ``rollouts_pod_template_hash`` (the chart's ServiceMonitor copies it from the pod
label Argo Rollouts sets); the chart replaces ``$CANARY``, ``$STABLE`` and ``$WINDOW``.

Each check but one passes when its query returns nothing or NaN: no traffic reached the canary in the
window, so there is nothing to judge. ``scraped`` is what keeps that honest: it fails on no data, that is
when Prometheus has no target for the canary's pods at all (a ServiceMonitor missing or not selected),
where every other query would pass.
"""

from __future__ import annotations

from typing import Any

from .config import (
    AVAILABILITY,
    BAD_CODES,
    CANARY_BURN_FACTOR,
    CANARY_CONFIDENCE_DROP,
    CANARY_MIN_ROWS,
    DRIFT_ALERT,
    LATENCY,
    LATENCY_THRESHOLD_SECONDS,
    PREDICTION,
    VALID_CODES,
)

REQUESTS = "model_server_requests_total"
DURATION = "model_server_request_duration_seconds"
CLASSES = "model_server_predicted_class_total"
CONFIDENCE = "model_server_prediction_confidence"
# Added to every class share before the PSI's log: a class one version never predicted would otherwise
# make the score infinite rather than large.
EPSILON = 0.001


def _share(selector: str) -> str:
    """Each predicted class's share of the rows predicted by the pods ``selector`` names."""
    counts = f"sum by (class_label) (increase({CLASSES}{{{selector}}}[$WINDOW]))"
    return f"({counts} / scalar(sum(increase({CLASSES}{{{selector}}}[$WINDOW]))) + {EPSILON:g})"


def _mean_confidence(selector: str) -> str:
    return (
        f"sum(increase({CONFIDENCE}_sum{{{selector}}}[$WINDOW]))"
        f" / sum(increase({CONFIDENCE}_count{{{selector}}}[$WINDOW]))"
    )


def metrics() -> list[dict[str, Any]]:
    """Each check: its name, what it means, its PromQL, the bound its single value must keep, and whether
    no data (an empty result or NaN) passes or fails it."""
    canary, stable = "$CANARY", "$STABLE"
    le = f'le="{LATENCY_THRESHOLD_SECONDS:g}"'
    valid = f"sum(increase({REQUESTS}{{{canary}, {PREDICTION}, {VALID_CODES}}}[$WINDOW]))"
    canary_rows = f"sum(increase({CLASSES}{{{canary}}}[$WINDOW]))"
    return [
        {
            "name": "scraped",
            "description": "Prometheus scrapes the canary's pods (every other check passes on no data).",
            "query": f"count(up{{{canary}}} == 1)",
            "condition": ">=",
            "threshold": 1,
            "no_data": "fails",
        },
        {
            "name": "availability",
            "description": (
                f"the canary's share of failed valid prediction requests (5xx and 429) burns the "
                f"{AVAILABILITY.objective:.1%} SLO's budget at most {CANARY_BURN_FACTOR:g}x as fast as the "
                f"{AVAILABILITY.period} period allows"
            ),
            "query": (
                f"(sum(increase({REQUESTS}{{{canary}, {PREDICTION}, {BAD_CODES}}}[$WINDOW])) or 0 * {valid})"
                f" / {valid}"
            ),
            "condition": "<=",
            "threshold": round(CANARY_BURN_FACTOR * AVAILABILITY.budget, 10),
            "no_data": "passes",
        },
        {
            "name": "latency",
            "description": (
                f"the canary's share of prediction requests slower than {LATENCY_THRESHOLD_SECONDS:g} s "
                f"burns the {LATENCY.objective:.0%} SLO's budget at most {CANARY_BURN_FACTOR:g}x as fast"
            ),
            "query": (
                f"1 - sum(increase({DURATION}_bucket{{{canary}, {PREDICTION}, {le}}}[$WINDOW]))"
                f" / sum(increase({DURATION}_count{{{canary}, {PREDICTION}}}[$WINDOW]))"
            ),
            "condition": "<=",
            "threshold": round(CANARY_BURN_FACTOR * LATENCY.budget, 10),
            "no_data": "passes",
        },
        {
            "name": "prediction-drift",
            "description": (
                "PSI of the canary's predicted classes against the stable version's on the same traffic "
                f"(classifiers; judged from {CANARY_MIN_ROWS} canary rows in the window)"
            ),
            "query": (
                f"sum(({_share(canary)} - {_share(stable)}) * ln({_share(canary)} / {_share(stable)}))"
                f" and on() ({canary_rows} >= {CANARY_MIN_ROWS})"
            ),
            "condition": "<",
            "threshold": DRIFT_ALERT,
            "no_data": "passes",
        },
        {
            "name": "confidence",
            "description": (
                "how far the canary's mean top-class probability is below the stable version's "
                "(classifiers, for rows predicted with probabilities)"
            ),
            "query": f"({_mean_confidence(stable)}) - ({_mean_confidence(canary)})",
            "condition": "<",
            "threshold": CANARY_CONFIDENCE_DROP,
            "no_data": "passes",
        },
    ]


def analysis_file() -> dict[str, Any]:
    return {"metrics": metrics()}
