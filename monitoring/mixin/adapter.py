"""prometheus-adapter values: the per-pod custom metric the chart's HPA scales on.

The chart's HPA asks for the pods metric ``model_server_requests_per_second`` (docs/design/contracts.md,
"Labels"): the rate of prediction requests each pod answered, whatever their status (a shed request is
load too).
"""

from __future__ import annotations

from typing import Any

from .config import PREDICTION

CUSTOM_METRIC = "model_server_requests_per_second"
SOURCE_SERIES = "model_server_requests_total"
# Two minutes: four scrapes at the chart's 30 s ServiceMonitor interval, so one missed scrape does not
# zero the metric, while the HPA still sees a load change within a couple of minutes.
RATE_WINDOW = "2m"


def adapter_rule() -> dict[str, Any]:
    return {
        "seriesQuery": f'{SOURCE_SERIES}{{namespace!="",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": f"^{SOURCE_SERIES}$", "as": CUSTOM_METRIC},
        # The route filter sits in metricsQuery: the adapter's <<.LabelMatchers>> only carries the
        # namespace and pod matchers of the HPA's request, not the seriesQuery's filters.
        # A pod that has answered no prediction yet has no series on those routes; the `or` gives it 0
        # (from the series its probes and scrapes make) rather than nothing, which the HPA would report
        # as FailedGetPodsMetric and not scale on until the first prediction.
        "metricsQuery": (
            f"sum by (<<.GroupBy>>) (rate(<<.Series>>{{<<.LabelMatchers>>,{PREDICTION}}}[{RATE_WINDOW}]))"
            f" or sum by (<<.GroupBy>>) (0 * rate(<<.Series>>{{<<.LabelMatchers>>}}[{RATE_WINDOW}]))"
        ),
    }


def values() -> dict[str, Any]:
    return {
        "prometheus": {
            # kube-prometheus-stack.yaml sets fullnameOverride, so this name holds for any release name.
            "url": "http://kube-prometheus-stack-prometheus.monitoring.svc",
            "port": 9090,
        },
        "rules": {
            # Only our rule: the chart's defaults expose every container metric as a custom metric,
            # which costs adapter memory and Prometheus queries for nothing we scale on.
            "default": False,
            "custom": [adapter_rule()],
        },
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        },
    }
