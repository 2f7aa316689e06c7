"""The monitoring stack for real, on the cluster: the Prometheus Operator turns the chart's
ServiceMonitor into a scrape job, Prometheus loads charts/platform-monitoring's PrometheusRule, reads
kube-state-metrics and the kubelet's cAdvisor, and the platform's alerts fire on real faults.

Scenario (one module-scoped fixture, all tests on one worker; about three minutes):
- charts/platform-monitoring installed as a test cluster would (every `for:` 0s and group intervals
  5 s, through its values, so the real rules fire within the test's budget);
- namespace *clean*: iris-classifier with traffic drawn from its training reference, plus client
  errors (4xx);
- namespace *faulty*: iris-classifier with MAX_IN_FLIGHT=1 under bursts (429s: the availability SLO
  burns), inputs shifted above every training decile (drift), and an HPA whose CPU target is so low
  that it sits at its maximum; `restarting`, whose server is stopped three times (its container
  restarts); `broken`, a rollout whose bundle does not match the version it is told to serve (live,
  not ready).
Traffic goes through `kubectl port-forward` to each release's Service; everything is then asserted
through the cluster Prometheus's HTTP API, as a user's Grafana or `promtool` would see it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from model_server.metrics import Metrics
from model_server.runtime.drift import PSI_SIGNIFICANT
from prometheus_client.metrics import MetricWrapperBase
from support.cluster import (
    Image,
    apply,
    create_namespace,
    delete_namespace,
    helm,
    helm_install,
    kubectl,
    kubectl_json,
    pods,
    port_forward,
    quantity,
    release_selector,
    restarts,
    wait_until,
)
from support.monitoring import ADAPTER_VALUES, all_panels, load_dashboards, load_rules, metric_names
from support.paths import CHART, PLATFORM_CHART
from support.previews import draw_dashboard
from support.prometheus import (
    PrometheusAPI,
    finite_values,
    grafana_interpolate,
    rate_interval,
    resolve_variables,
    sample_rows,
)

# The scenario (installs, the first scrape, traffic, the alerts) takes two to four minutes on a busy
# two-core machine; pytest-timeout counts it against the first test.
pytestmark = pytest.mark.timeout(600)

# The cluster Prometheus's scrape and evaluation interval (cluster/addons/monitoring/20-prometheus.yaml);
# the releases' ServiceMonitors scrape as often.
SCRAPE_SECONDS = 5
TRAFFIC_SECONDS = 40
# Rows each release must have answered before the traffic stops: more than any drift window here needs
# to score every feature (ROWS_PER_BIN x its bins, and the faulty release's 1000-row window).
MIN_DRIFT_ROWS = 1500
MODEL = "iris-classifier"
REGRESSOR = "sales-regressor"
FAULTY_ALERTS = {
    "ModelServerAvailabilityBudgetBurnFast",
    "ModelServerAvailabilityBudgetBurnSlow",
    "ModelServerFeatureDrift",
    "ModelServerPredictionDrift",
    "ModelServerPodRestarting",
    "ModelServerHPAAtMax",
    "ModelServerPodNotReady",
}
# Panels (uid:title) that need a condition this scenario does not create, with the reason; none today:
# the scenario runs a classifier and a regressor, faults of every kind, an HPA and a restart, so every
# panel of both dashboards must return data.
NO_DATA_EXPECTED: dict[str, str] = {}


@dataclass
class Scenario:
    prom: PrometheusAPI
    clean: str  # namespace
    faulty: str  # namespace
    start: float  # traffic started (unix time)
    end: float  # traffic ended
    codes: dict[str, dict[int, int]] = field(default_factory=dict)  # clean|faulty/release -> status -> count
    installed: float = 0.0  # the releases were installed (unix time)
    pod_monitor_targets: list[dict[str, Any]] = field(default_factory=list)  # the PodMonitor's, while it ran


def monitored(image: Image, **extra: Any) -> dict[str, Any]:
    """Chart values of a release Prometheus scrapes: the ServiceMonitor on, at the cluster's interval."""
    values: dict[str, Any] = {
        **image.values(),
        "monitoring": {
            "serviceMonitor": {"enabled": True, "interval": f"{SCRAPE_SECONDS}s", "scrapeTimeout": "4s"},
            "releaseLabel": "kube-prometheus-stack",
        },
        "resources": {"requests": {"cpu": "50m"}},
        "probes": {"startup": {"periodSeconds": 1}, "readiness": {"periodSeconds": 2}},
    }
    for key, value in extra.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


def drive(
    base: str,
    metadata: dict[str, Any],
    deadline: float,
    codes: dict[int, int],
    rng: np.random.Generator,
    *,
    shifted: bool = False,
    bursts: bool = False,
    client_errors: bool = False,
) -> None:
    """Predictions in the three HTTP protocols until ``deadline``, counting the status codes."""
    features = [f["name"] for f in metadata["features"]]
    name = metadata["name"]
    with httpx.Client(base_url=base, timeout=10.0, trust_env=False) as client:
        answered = 0  # rows of the predictions answered 200, which are the ones drift tracking saw

        def send(method: str, path: str, n_rows: int = 0, **kw: Any) -> None:
            """One request; ``n_rows``: the prediction rows it carries, counted when answered 200."""
            nonlocal answered
            try:
                status = client.request(method, path, **kw).status_code
            except httpx.TransportError:  # the port-forward restarting: not the server's answer
                status = 0
            codes[status] = codes.get(status, 0) + 1
            if status == 200:
                answered += n_rows

        def more() -> bool:
            # Until the deadline, and on (for at most a minute) until the drift windows could score: on a
            # busy node a restarting port-forward can leave a release short of rows by the deadline.
            now = time.time()
            return now < deadline or (answered < MIN_DRIFT_ROWS and now < deadline + 60)

        i = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            while more():
                i += 1
                rows = sample_rows(metadata, int(rng.integers(5, 25)), rng, shift=shifted)
                if i % 5 == 0 and metadata["input_kind"] == "array":  # Open Inference Protocol V2
                    data = [[r[f] for f in features] for r in rows]
                    tensor = {
                        "name": "x",
                        "shape": [len(rows), len(features)],
                        "datatype": "FP64",
                        "data": data,
                    }
                    send("POST", f"/v2/models/{name}/infer", len(rows), json={"inputs": [tensor]})
                elif i % 7 == 0 and metadata["input_kind"] == "array":  # KServe V1
                    send(
                        "POST",
                        f"/v1/models/{name}:predict",
                        len(rows),
                        json={"instances": [[r[f] for f in features] for r in rows]},
                    )
                elif i % 2 == 0 and metadata["task"] == "classifier":  # the confidence histogram's rows
                    send("POST", "/predict?probabilities=true", len(rows), json={"instances": rows})
                else:
                    send("POST", "/predict", len(rows), json={"instances": rows})
                if client_errors and i % 3 == 0:
                    bad = dict(rows[0])
                    bad.pop(features[0])  # a missing feature
                    send("POST", "/predict", json=bad)
                    send(
                        "POST", "/predict", content=b"sepal_length=1", headers={"content-type": "text/plain"}
                    )
                if bursts and i % 4 == 0:  # more concurrent requests than MAX_IN_FLIGHT admits
                    one = {"instances": rows}
                    list(pool.map(lambda _: send("POST", "/predict", json=one), range(8)))
                time.sleep(0.02)


def stop_server_three_times(namespace: str, release: str) -> None:
    """The server of the release's one pod told to stop (SIGTERM to the container's PID 1) three
    times; the kubelet restarts the container each time."""
    for n in range(1, 4):
        [pod] = pods(namespace, release_selector(release))
        name = pod["metadata"]["name"]
        wait_until(
            lambda: all(
                s.get("ready")
                for s in kubectl_json("get", "pod", "-n", namespace, name)["status"]["containerStatuses"]
            ),
            120,
            f"{name} to be ready before stop {n}",
        )
        kubectl(
            "exec",
            "-n",
            namespace,
            name,
            "--",
            "python",
            "-c",
            "import os, signal; os.kill(1, signal.SIGTERM)",
        )
        wait_until(
            lambda: restarts(kubectl_json("get", "pod", "-n", namespace, name)) >= n,
            120,
            f"{name}'s container to restart ({n})",
        )


def install_platform_monitoring() -> None:
    helm(
        "upgrade",
        "--install",
        "platform-monitoring",
        str(PLATFORM_CHART),
        "--namespace",
        "monitoring",
        "--set",
        "prometheusRule.forOverride.all=0s",
        "--set",
        f"prometheusRule.intervalOverride={SCRAPE_SECONDS}s",
    )


@pytest.fixture(scope="module")
def scenario(
    cluster: str, server_image: Image, demo_bundles: Path, request: pytest.FixtureRequest
) -> Iterator[Scenario]:
    metadata = {
        m: yaml.safe_load((demo_bundles / m / "metadata.json").read_text()) for m in (MODEL, REGRESSOR)
    }
    suffix = f"{time.time_ns() % 100000:05d}"
    clean = create_namespace(f"e2e-monitoring-clean-{suffix}")
    faulty = create_namespace(f"e2e-monitoring-faulty-{suffix}")
    failed = False
    with ExitStack() as stack:
        try:
            install_platform_monitoring()
            stack.callback(lambda: helm("uninstall", "platform-monitoring", "--namespace", "monitoring"))
            helm_install("iris", clean, monitored(server_image), wait=False)
            # The image carries both demo bundles: the regressor's panels get data too.
            helm_install("sales", clean, monitored(server_image, model={"name": REGRESSOR}), wait=False)
            # The regressor is also scraped through a PodMonitor with the same endpoint (what a user
            # who scrapes pods would write) until its target is up: its target labels must not rename
            # the server's either. Then it goes, so the dashboards count each pod once.
            installed = time.time()
            apply(clean, pod_monitor("sales"))
            helm_install(
                "iris",
                faulty,
                monitored(
                    server_image,
                    server={"maxInFlight": 1, "driftWindowRows": 1000},
                    autoscaling={
                        "enabled": True,
                        "minReplicas": 1,
                        "maxReplicas": 2,
                        # Any work at all is above 1 % of the request: the HPA goes to its maximum.
                        "targetCPUUtilizationPercentage": 1,
                    },
                ),
                wait=False,
            )
            helm_install("restarting", faulty, monitored(server_image), wait=False)
            # The chart's own startup probe (5 minutes), not the test's 1 s: the broken pod stays up
            # for the whole scenario.
            broken = monitored(server_image, model={"version": "9.9.9"})
            broken.pop("probes")
            helm_install("broken", faulty, broken, wait=False)
            for ns, release in ((clean, "iris"), (clean, "sales"), (faulty, "iris"), (faulty, "restarting")):
                kubectl(
                    "rollout",
                    "status",
                    "-n",
                    ns,
                    f"deployment/{release}-model-server",
                    "--timeout",
                    "180s",
                    timeout=200,
                )

            prom = PrometheusAPI(
                stack.enter_context(
                    port_forward("monitoring", "service/kube-prometheus-stack-prometheus", 9090)
                )
            )
            # A new ServiceMonitor reaches Prometheus through the Operator, a Secret the kubelet syncs
            # into its pod and the config reloader: up to a minute or two. Traffic before the first
            # scrape would not count (a counter's first sample is its baseline).
            wait_until(
                lambda: scraped(prom, clean, faulty), 240, "Prometheus to scrape every model pod", interval=3
            )
            by_pod_monitor = wait_until(
                lambda: pod_monitor_targets(prom, clean), 120, "the PodMonitor's target to be up", interval=3
            )
            # Its job goes at Prometheus's next reload, early in the traffic; only instant counts of the
            # regressor's pods could see it twice before that.
            kubectl("delete", "podmonitor", "-n", clean, "sales-pods")
            plans = {  # key: the release's traffic; the release, its model, and how to drive it
                "clean/iris": (clean, "iris", MODEL, {"client_errors": True}),
                "clean/sales": (clean, "sales", REGRESSOR, {"client_errors": True}),
                "faulty/iris": (faulty, "iris", MODEL, {"shifted": True, "bursts": True}),
            }
            urls = {
                key: stack.enter_context(port_forward(ns, f"service/{release}-model-server", 8000))
                for key, (ns, release, _, _) in plans.items()
            }
            codes: dict[str, dict[int, int]] = {key: {} for key in plans}
            start = time.time()
            deadline = start + TRAFFIC_SECONDS
            rng = np.random.default_rng(4)
            threads = [
                threading.Thread(
                    target=drive,
                    args=(
                        urls[key],
                        metadata[model],
                        deadline,
                        codes[key],
                        np.random.default_rng(rng.integers(1_000_000_000)),
                    ),
                    kwargs=kw,
                )
                for key, (_, _, model, kw) in plans.items()
            ]
            restarter = threading.Thread(target=stop_server_three_times, args=(faulty, "restarting"))
            for th in [*threads, restarter]:
                th.start()
            for th in [*threads, restarter]:
                th.join()
            end = time.time()

            def faults_firing() -> set[str] | None:
                firing = {
                    a["labels"]["alertname"]
                    for a in firing_alerts(prom)
                    if a["labels"].get("namespace") == faulty
                }
                return firing if FAULTY_ALERTS <= firing else None

            try:
                wait_until(faults_firing, 120, "the faulty namespace's alerts to fire", interval=3)
            except AssertionError as e:
                print(e)  # the test of the alerts says which are missing
            scenario = Scenario(prom, clean, faulty, start, end, codes, installed, by_pod_monitor)
            if os.environ.get("E2E_DASHBOARD_PREVIEWS"):  # make dashboard-previews
                draw_previews(scenario, Path(os.environ["E2E_DASHBOARD_PREVIEWS"]))
            yield scenario
            failed = request.session.testsfailed > 0
        except BaseException:
            failed = True
            raise
        finally:
            stack.close()
            delete_namespace(clean, failed)
            delete_namespace(faulty, failed)


def pod_monitor(release: str) -> dict[str, Any]:
    """A PodMonitor with the endpoint of the chart's ServiceMonitor (`helm template` of the release)."""
    rendered = yaml.safe_load_all(
        helm("template", release, str(CHART), "--set", "monitoring.serviceMonitor.enabled=true")
    )
    monitor = next(d for d in rendered if d and d["kind"] == "ServiceMonitor")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": f"{release}-pods", "labels": {"release": "kube-prometheus-stack"}},
        "spec": {
            "selector": monitor["spec"]["selector"],
            "podMetricsEndpoints": monitor["spec"]["endpoints"],
        },
    }


def draw_previews(scenario: Scenario, out: Path) -> None:
    """Both dashboards drawn from this scenario's data: the model dashboard for the faulty iris (where
    every row has something to show), the platform dashboard for all namespaces."""
    for old in out.glob("*.png"):
        old.unlink()
    boards = load_dashboards()
    builtins = {"__rate_interval": rate_interval(SCRAPE_SECONDS, 2 * SCRAPE_SECONDS)}
    now = time.time()
    picks = {
        "model-server-model": {"namespace": scenario.faulty, "model": MODEL},
        "model-server-platform": {},
    }
    for uid, pick in picks.items():
        written = draw_dashboard(
            scenario.prom, boards[uid], pick, scenario.start - 60, now, SCRAPE_SECONDS, builtins, out
        )
        print("\n".join(str(p) for p in written))


def pod_monitor_targets(prom: PrometheusAPI, namespace: str) -> list[dict[str, Any]]:
    return [
        t
        for t in targets(prom)
        if t["scrapePool"] == f"podMonitor/{namespace}/sales-pods/0" and t["health"] == "up"
    ]


def running_model_pods(*namespaces: str) -> set[tuple[str, str]]:
    return {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for ns in namespaces
        for p in kubectl_json("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=model-server")["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def scraped(prom: PrometheusAPI, *namespaces: str) -> bool:
    up = {
        (t["labels"].get("namespace"), t["labels"].get("pod"))
        for t in targets(prom)
        if t["health"] == "up" and t["labels"].get("namespace") in namespaces
    }
    return running_model_pods(*namespaces) <= up


def firing_alerts(prom: PrometheusAPI) -> list[dict[str, Any]]:
    return [a for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]


def targets(prom: PrometheusAPI) -> list[dict[str, Any]]:
    return prom.api("targets", state="active")["activeTargets"]  # type: ignore[no-any-return]


def test_the_operator_made_a_scrape_job_of_each_servicemonitor_and_every_model_pod_is_up(
    scenario: Scenario,
) -> None:
    """Prometheus's own target list: every running model pod up, with the target labels the rules and
    dashboards aggregate by; the cluster's exporters up too."""
    active = targets(scenario.prom)
    # The PodMonitor's job (test_no_label_...) may linger until Prometheus's next reload.
    mine = [
        t
        for t in active
        if t["labels"].get("namespace") in (scenario.clean, scenario.faulty)
        and t["scrapePool"].startswith("serviceMonitor/")
    ]
    expected = running_model_pods(scenario.clean, scenario.faulty)
    print(
        "\n" + "\n".join(f"{t['scrapePool']}  {t['scrapeUrl']}  {t['health']}  {t['labels']}" for t in mine)
    )
    assert {(t["labels"]["namespace"], t["labels"]["pod"]) for t in mine} == expected
    for t in mine:
        labels = t["labels"]
        expected_model = REGRESSOR if labels["pod"].startswith("sales-") else MODEL
        assert labels["model"] == expected_model, labels
        version = "9.9.9" if labels["pod"].startswith("broken-") else "1.0.0"
        assert labels["model_version"] == version, labels
        assert t["scrapePool"].startswith(f"serviceMonitor/{labels['namespace']}/"), t["scrapePool"]
        # Up, the broken rollout included: a pod that is not ready still serves /metrics. Only the pod
        # whose server the test stops may be caught between restarts.
        if not labels["pod"].startswith("restarting-"):
            assert t["health"] == "up", t
    pools = {t["scrapePool"] for t in active}
    assert "serviceMonitor/monitoring/kube-state-metrics/0" in pools
    assert "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/0" in pools
    assert all(
        t["health"] == "up" for t in active if t["scrapePool"].startswith("serviceMonitor/monitoring/")
    ), [(t["scrapePool"], t["lastError"]) for t in active if t["health"] != "up"]


def test_no_label_the_server_writes_is_renamed_by_a_target_label(scenario: Scenario) -> None:
    """A label the server writes that a target label also sets is stored as ``exported_<name>`` (the
    target wins), so queries on the server's name silently match nothing: model_info once wrote
    ``model_version`` and the dashboards had to read ``exported_model_version``; the request metrics
    once wrote ``endpoint``, which the Operator sets to the port name, and every SLO rule, the adapter
    rule and the dashboards matched nothing. The target labels are the Operator's own, from both the
    ServiceMonitor's and the PodMonitor's scrape jobs."""
    mine = scenario.pod_monitor_targets + [
        t for t in targets(scenario.prom) if t["labels"].get("namespace") in (scenario.clean, scenario.faulty)
    ]
    pools = {t["scrapePool"].split("/")[0] for t in mine}
    assert pools == {"serviceMonitor", "podMonitor"}, pools
    target_labels = {k for t in mine for k in t["labels"]}
    assert target_labels >= {
        "job",
        "instance",
        "namespace",
        "pod",
        "container",
        "endpoint",
        "model",
        "model_version",
    }
    metrics = Metrics()
    metrics.enable_predicted_value((1.0, 2.0))  # the regressor's histogram exists only once one loads
    written = {
        name: set(obj._labelnames)
        for name, obj in vars(metrics).items()
        if isinstance(obj, MetricWrapperBase)
    }
    assert written["requests"] >= {"protocol", "route", "code"}  # what the rules select on
    clashes = {name: labels & target_labels for name, labels in written.items() if labels & target_labels}
    assert clashes == {}
    # And in what Prometheus stored: no series carries an exported_ label.
    series = scenario.prom.series('{__name__=~"model_server_.+"}', scenario.installed, time.time())
    renamed = sorted({k for s in series for k in s if k.startswith("exported_")})
    assert renamed == [], f"server labels shadowed by target labels: {renamed}"
    routes = {s["route"] for s in series if s["__name__"] == "model_server_requests_total"}
    assert {"/predict", "/metrics"} <= routes, routes


def test_traffic_produced_what_the_scenario_needs(scenario: Scenario) -> None:
    print(f"\n{scenario.codes}")
    for key in ("clean/iris", "clean/sales"):
        codes = scenario.codes[key]
        assert codes.get(200, 0) > 50 and sum(n for c, n in codes.items() if 400 <= c < 500) > 10, codes
        # Clean means clean: no 5xx, nothing shed. (0 counts a request lost with a port-forward that
        # kubectl ended and support.cluster restarted: the harness, not the server.)
        assert not any(c >= 500 or c == 429 for c in codes), codes
    faulty = scenario.codes["faulty/iris"]
    assert faulty.get(200, 0) > 20 and faulty.get(429, 0) > 20, faulty


def test_the_platform_rules_load_and_every_recording_rule_returns_data(scenario: Scenario) -> None:
    groups = [
        g
        for g in scenario.prom.api("rules")["groups"]
        if g["file"].startswith("/etc/prometheus/rules/") and "platform-monitoring" in g["file"]
    ]
    expected = load_rules()["groups"]
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in expected)
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in expected)
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, broken  # e.g. many-to-many matching errors only show when evaluated on real data
    empty = [
        r["name"]
        for r in rules
        if r["type"] == "recording" and not finite_values(scenario.prom.query(r["name"]))
    ]
    assert not empty, f"recording rules with no data: {empty}"


def test_faults_fire_their_alerts(scenario: Scenario) -> None:
    firing = [
        a["labels"] for a in firing_alerts(scenario.prom) if a["labels"].get("namespace") == scenario.faulty
    ]
    print("\n" + "\n".join(str(a) for a in firing))
    names = {a["alertname"] for a in firing}
    assert FAULTY_ALERTS <= names, f"missing: {FAULTY_ALERTS - names}"
    assert all(a["model"] == MODEL for a in firing)
    drifted = {a["feature"] for a in firing if a["alertname"] == "ModelServerFeatureDrift"}
    assert drifted == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    [not_ready] = [a for a in firing if a["alertname"] == "ModelServerPodNotReady"]
    assert not_ready["model_version"] == "9.9.9" and not_ready["pod"].startswith("broken-"), not_ready
    [restarting] = [a for a in firing if a["alertname"] == "ModelServerPodRestarting"]
    assert restarting["pod"].startswith("restarting-"), restarting
    [at_max] = [a for a in firing if a["alertname"] == "ModelServerHPAAtMax"]
    assert at_max["horizontalpodautoscaler"] == "iris-model-server", at_max


def test_clean_traffic_fires_nothing(scenario: Scenario) -> None:
    loud = [
        a["labels"]
        for a in scenario.prom.api("alerts")["alerts"]
        if a["labels"].get("namespace") == scenario.clean
    ]
    assert loud == []


def test_the_availability_sli_ignores_client_errors_and_counts_shed_requests(scenario: Scenario) -> None:
    prom, at = scenario.prom, scenario.end
    client_errors = prom.query(
        f'sum(increase(model_server_requests_total{{namespace="{scenario.clean}", code=~"4.."}}[1m]))', at
    )
    assert finite_values(client_errors)[0] > 10
    sli = {
        r["metric"]["namespace"]: float(r["value"][1])
        for r in prom.query("namespace_model:model_server_availability_errors:ratio_rate5m", at)
        if r["metric"]["model"] == MODEL
    }
    assert sli[scenario.clean] == 0
    selector = f'namespace="{scenario.clean}", model="{REGRESSOR}"'
    regressor = prom.query(f"namespace_model:model_server_availability_errors:ratio_rate5m{{{selector}}}", at)
    assert finite_values(regressor) == [0.0], regressor
    assert sli[scenario.faulty] > 14.4 * 0.001


def test_drift_scores_separate_shifted_from_clean_inputs(scenario: Scenario) -> None:
    # The ServiceMonitors' series only (`service` is their target label): the regressor's PodMonitor
    # scraped once, before any traffic (every score NaN), and Prometheus writes no staleness marker for a
    # job a reload removes, so that sample answers instant queries for the 5-minute lookback.
    psi = {
        (r["metric"]["namespace"], r["metric"]["pod"], r["metric"]["feature"]): float(r["value"][1])
        for r in scenario.prom.query(
            f'model_server_feature_drift_psi{{namespace=~"{scenario.clean}|{scenario.faulty}", service!=""}}'
        )
    }
    clean = {k: v for k, v in psi.items() if k[0] == scenario.clean}
    shifted = {
        k: v for k, v in psi.items() if k[0] == scenario.faulty and k[1].startswith("iris-") and v >= 0
    }
    print(f"\nclean: {clean}\nshifted: {shifted}")
    assert len(clean) == 8, clean  # every feature of both clean models
    assert max(clean.values()) < PSI_SIGNIFICANT, clean
    assert {k[2] for k in shifted if shifted[k] > PSI_SIGNIFICANT} == {
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    }


def test_every_metric_the_dashboards_and_rules_name_is_scraped(scenario: Scenario) -> None:
    names = set()
    for board in load_dashboards().values():
        for panel in all_panels(board):
            names |= {n for t in panel.get("targets", []) for n in metric_names(t["expr"])}
    names |= {n for g in load_rules()["groups"] for r in g["rules"] for n in metric_names(r["expr"])}
    missing = [
        n
        for n in sorted(names)
        if not scenario.prom.series(f'{{__name__="{n}"}}', scenario.start, time.time())
    ]
    assert not missing, f"named by a dashboard or rule but never seen by Prometheus: {missing}"


def _panel_queries() -> Iterator[Any]:
    for uid, board in load_dashboards().items():
        for panel in all_panels(board):
            for target in panel.get("targets", []):
                yield pytest.param(uid, panel, target, id=f"{uid}:{panel['title']}:{target['refId']}")


@pytest.mark.parametrize(("uid", "panel", "target"), list(_panel_queries()))
def test_every_dashboard_query_returns_data(
    scenario: Scenario, uid: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    """Each query, with the variables Grafana would substitute and $__rate_interval as Grafana computes
    it for this scrape interval, returns a number for one of the scenario's namespaces."""
    prom = scenario.prom
    board = load_dashboards()[uid]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    builtins = {"__rate_interval": rate_interval(SCRAPE_SECONDS, 2 * SCRAPE_SECONDS)}
    picks = (
        [
            {"namespace": scenario.clean, "model": MODEL},
            {"namespace": scenario.clean, "model": REGRESSOR},
            {"namespace": scenario.faulty, "model": MODEL},
        ]
        if not variables["namespace"].get("includeAll")
        else [{}]
    )
    start, end, now = scenario.start, scenario.end, time.time()
    got: list[float] = []
    for pick in picks:
        chosen = resolve_variables(prom, board, start, now, pick)
        expr = grafana_interpolate(target["expr"], variables, chosen, builtins)
        assert "$" not in expr, expr
        if target.get("instant"):  # table panels: at the end of the traffic and now (alerts have fired)
            got += finite_values(prom.query(expr, end)) + finite_values(prom.query(expr, now))
        else:
            got += finite_values(prom.query_range(expr, start, now, SCRAPE_SECONDS))
    reason = NO_DATA_EXPECTED.get(f"{uid}:{panel['title']}")
    if reason:
        assert not got, f"{panel['title']} has data although {reason}: update NO_DATA_EXPECTED"
        return
    assert got, f"no data for {panel['title']} ({target['refId']}): {target['expr']}"


def test_the_adapter_serves_requests_per_second_per_pod_through_the_custom_metrics_api(
    scenario: Scenario,
) -> None:
    """prometheus-adapter with the generated rule (monitoring/values/prometheus-adapter.yaml) serves the
    per-pod value the HPA reads for each clean pod that got traffic (the HPA itself: test_autoscaling)."""
    rule = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"][0]
    metric = rule["name"]["as"]
    path = f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{scenario.clean}/pods/*/{metric}"
    listing = json.loads(kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta1"))
    assert f"pods/{metric}" in {r["name"] for r in listing["resources"]}, listing
    # The traffic is over: the 2-minute rate of the clean pod is still above zero for a while.
    items = wait_until(
        lambda: (
            [i for i in json.loads(kubectl("get", "--raw", path))["items"] if quantity(i["value"]) > 0]
            or None
        ),
        60,
        "the adapter to serve the clean pods' rates",
    )
    print(f"\n{items}")
    clean_pods = {
        p["metadata"]["name"] for r in ("iris", "sales") for p in pods(scenario.clean, release_selector(r))
    }
    assert {i["describedObject"]["name"] for i in items} == clean_pods
