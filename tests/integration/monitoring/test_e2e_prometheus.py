"""The monitoring proven against the real thing: a real Prometheus scraping real server processes.

Scenario (one module-scoped fixture, about a minute):
- three server processes on loopback, each scraped through the job the Prometheus Operator would
  generate from that release's ServiceMonitor (the chart rendered by helm, turned into relabelings by
  operator_scrape.py), so they carry the same target labels as in a cluster: namespace, service, pod,
  container, endpoint (the port name), job, instance, and the chart's model and model_version;
  clean/iris-classifier and clean/sales-regressor get traffic drawn from their training reference,
  plus client errors (4xx); faulty/iris-classifier runs with MAX_IN_FLIGHT=1 and gets bursts (429)
  and inputs shifted above every training decile (drift);
- kube-state-metrics and cAdvisor series for those pods (see prometheus_harness.ClusterExporters);
  the faulty pod keeps restarting and its HPA sits at its maximum;
- the PrometheusRule of charts/platform-monitoring, rendered with its `for:` override at 0s, loaded
  without group intervals (the test cannot wait 15 minutes; the expressions are the real ones).
Then everything is asserted through Prometheus's HTTP API.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from model_server.runtime.drift import PSI_SIGNIFICANT
from support.monitoring import (
    ADAPTER_VALUES,
    all_panels,
    helm_template,
    load_dashboards,
    load_rules,
    metric_names,
)
from support.operator_scrape import endpoints_meta, servicemonitor_scrape_config
from support.paths import CHART, PLATFORM_CHART
from support.prometheus import (
    SCRAPE_INTERVAL_SECONDS,
    ClusterExporters,
    Pod,
    Prometheus,
    finite_values,
    grafana_interpolate,
    rate_interval,
    resolve_variables,
    sample_rows,
)
from support.serverproc import ServerProcess
from support.tools import tool

pytestmark = pytest.mark.slow

TRAFFIC_SECONDS = 14
FAULTY_ALERTS = {
    "ModelServerAvailabilityBudgetBurnFast",
    "ModelServerAvailabilityBudgetBurnSlow",
    "ModelServerFeatureDrift",
    "ModelServerPredictionDrift",
    "ModelServerPodRestarting",
    "ModelServerHPAAtMax",
}


@dataclass
class Target:
    namespace: str
    pod: str
    bundle: Path
    env: dict[str, str]
    hpa: dict[str, int]
    restarting: bool = False
    server: ServerProcess | None = None

    @property
    def metadata(self) -> dict:
        return json.loads((self.bundle / "metadata.json").read_text())

    @property
    def model(self) -> str:
        return self.metadata["name"]

    @property
    def release(self) -> str:
        """The Helm release's name (fullnameOverride): one release per model and environment."""
        return self.pod.rsplit("-", 1)[0]


def _operator_scrape_config(target: Target, workdir: Path) -> dict:
    """The scrape job the Prometheus Operator generates from the ServiceMonitor of ``target``'s
    release, with the real server process as the one pod behind its Service."""
    values = workdir / f"{target.release}-values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "fullnameOverride": target.release,
                "model": {"name": target.model, "version": target.metadata["version"]},
            }
        )
    )
    docs = {d["kind"]: d for d in helm_template(CHART / "ci" / "monitoring-values.yaml", values)}
    monitor = docs["ServiceMonitor"]
    monitor["metadata"]["namespace"] = target.namespace  # helm template leaves it to the install
    meta = endpoints_meta(
        target.namespace,
        docs["Service"],
        target.pod,
        docs["Deployment"]["spec"]["template"],
        monitor["spec"]["endpoints"][0]["port"],
    )
    assert target.server is not None
    return servicemonitor_scrape_config(monitor, [(target.server.base_url.removeprefix("http://"), meta)])


@dataclass
class Scenario:
    prom: Prometheus
    targets: list[Target]
    start: float  # traffic started (unix time)
    end: float  # traffic ended
    codes: dict[str, dict[int, int]]  # pod -> status code -> count, as the clients saw them


def _rules_for_test(workdir: Path) -> Path:
    """The PrometheusRule of charts/platform-monitoring with every alert's `for:` shortened through its
    value (prometheusRule.forOverride), as a test cluster would install it."""
    docs = helm_template(chart=PLATFORM_CHART, sets={"prometheusRule.forOverride.all": '"0s"'})
    groups = next(d for d in docs if d["kind"] == "PrometheusRule")["spec"]["groups"]
    for group in groups:
        group.pop("interval", None)
        for rule in group["rules"]:
            if "alert" in rule:  # an alert without `for:` fires at once already
                assert rule.get("for", "0s") == "0s", rule["alert"]
    assert [r.get("record") or r["alert"] for g in groups for r in g["rules"]] == [
        r.get("record") or r["alert"] for g in load_rules()["groups"] for r in g["rules"]
    ]
    path = workdir / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def _drive(
    target: Target,
    deadline: float,
    codes: dict[int, int],
    rng: np.random.Generator,
    *,
    shifted: bool = False,
    bursts: bool = False,
    client_errors: bool = False,
) -> None:
    meta = target.metadata
    features = [f["name"] for f in meta["features"]]
    name = meta["name"]
    assert target.server is not None
    with httpx.Client(base_url=target.server.base_url, timeout=10.0, trust_env=False) as client:

        def send(method: str, path: str, **kw) -> None:
            status = client.request(method, path, **kw).status_code
            codes[status] = codes.get(status, 0) + 1

        i = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            while time.time() < deadline:
                i += 1
                rows = sample_rows(meta, int(rng.integers(5, 25)), rng, shift=shifted)
                if i % 5 == 0 and meta["input_kind"] == "array":  # Open Inference Protocol V2
                    data = [[r[f] for f in features] for r in rows]
                    send(
                        "POST",
                        f"/v2/models/{name}/infer",
                        json={
                            "inputs": [
                                {
                                    "name": "x",
                                    "shape": [len(rows), len(features)],
                                    "datatype": "FP64",
                                    "data": data,
                                }
                            ]
                        },
                    )
                elif i % 7 == 0 and meta["input_kind"] == "array":  # KServe V1
                    send(
                        "POST",
                        f"/v1/models/{name}:predict",
                        json={"instances": [[r[f] for f in features] for r in rows]},
                    )
                else:
                    send("POST", "/predict", json={"instances": rows})
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


@pytest.fixture(scope="module")
def scenario(demo_bundles: Path, tmp_path_factory: pytest.TempPathFactory):
    prometheus = tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    iris, sales = demo_bundles / "iris-classifier", demo_bundles / "sales-regressor"
    targets = [
        Target(
            "clean",
            "iris-clean-0",
            iris,
            {"BATCHING": "on"},
            {"current": 2, "desired": 2, "min": 2, "max": 10},
        ),
        Target(
            "clean",
            "sales-clean-0",
            sales,
            {"BATCHING": "on"},
            {"current": 3, "desired": 3, "min": 2, "max": 10},
        ),
        Target(
            "faulty",
            "iris-faulty-0",
            iris,
            {"BATCHING": "on", "MAX_IN_FLIGHT": "1", "DRIFT_WINDOW_ROWS": "1000"},
            {"current": 5, "desired": 7, "min": 1, "max": 5},
            restarting=True,
        ),
    ]
    started: list[object] = []
    try:
        for t in targets:  # start all three, then wait: they load in parallel
            t.server = ServerProcess(t.bundle, t.env)
            started.append(t.server)
        for t in targets:
            assert t.server is not None
            t.server.wait_ready(90)
        exporters = ClusterExporters(
            [
                Pod(
                    t.namespace,
                    t.model,
                    t.metadata["version"],
                    t.pod,
                    t.server.pid,
                    t.hpa,  # type: ignore[union-attr]
                    restarts=(lambda elapsed: int(elapsed // 3)) if t.restarting else (lambda elapsed: 0),
                )
                for t in targets
            ]
        )
        started.append(exporters)
        scrape_configs = [
            *(_operator_scrape_config(t, workdir) for t in targets),
            # kube-prometheus-stack scrapes kube-state-metrics and the kubelet with honor_labels
            {
                "job_name": "kube-state-metrics",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{exporters.port}"]}],
            },
        ]
        prom = Prometheus(prometheus, workdir, scrape_configs, _rules_for_test(workdir))
        started.append(prom)
        prom.wait_ready()

        codes: dict[str, dict[int, int]] = {t.pod: {} for t in targets}
        start = time.time()
        deadline = start + TRAFFIC_SECONDS
        rng = np.random.default_rng(4)
        plans = [
            (targets[0], {"client_errors": True}),
            (targets[1], {"client_errors": True}),
            (targets[2], {"shifted": True, "bursts": True}),
        ]
        threads = [
            threading.Thread(
                target=_drive,
                args=(t, deadline, codes[t.pod], np.random.default_rng(rng.integers(1e9))),
                kwargs=kw,
            )
            for t, kw in plans
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        end = time.time()

        # Wait for the faults to show as firing alerts (a few evaluations after the last scrape).
        wait_until = time.time() + 25
        while time.time() < wait_until:
            firing = {
                a["labels"]["alertname"] for a in prom.firing() if a["labels"].get("namespace") == "faulty"
            }
            if FAULTY_ALERTS <= firing:
                break
            time.sleep(1)
        yield Scenario(prom, targets, start, end, codes)
    finally:
        for thing in reversed(started):
            thing.stop()  # type: ignore[attr-defined]


def test_server_series_carry_the_operator_target_labels_and_keep_their_own(scenario: Scenario):
    """As in a cluster: every server series has the target labels the operator attaches, and none of
    the server's own labels was renamed to exported_<name> because a target label took its name."""
    series = scenario.prom.series('{__name__=~"model_server_.+"}', scenario.start, time.time())
    assert series
    renamed = sorted({k for s in series for k in s if k.startswith("exported_")})
    assert renamed == [], f"server labels shadowed by target labels: {renamed}"
    for target in scenario.targets:
        mine = [s for s in series if s.get("pod") == target.pod]
        assert mine, target.pod
        for s in mine:
            assert s["namespace"] == target.namespace and s["model"] == target.model
            assert s["service"] == s["job"] == target.release
            assert (s["endpoint"], s["container"]) == ("http", "server")
            assert s["instance"] == target.server.base_url.removeprefix("http://")  # type: ignore[union-attr]
    requests = [s for s in series if s["__name__"] == "model_server_requests_total"]
    assert {"/predict", "/metrics"} <= {s["route"] for s in requests}


def test_traffic_produced_what_the_scenario_needs(scenario: Scenario):
    clean, sales, faulty = (scenario.codes[t.pod] for t in scenario.targets)
    for codes in (clean, sales):
        assert codes.get(200, 0) > 50 and sum(n for c, n in codes.items() if 400 <= c < 500) > 10
        assert not any(c >= 500 or c == 429 for c in codes), codes  # clean means clean
    assert faulty.get(200, 0) > 20 and faulty.get(429, 0) > 20, faulty


def test_faults_fire_the_error_rate_drift_and_kubernetes_alerts(scenario: Scenario):
    firing = [a["labels"] for a in scenario.prom.firing() if a["labels"].get("namespace") == "faulty"]
    names = {a["alertname"] for a in firing}
    assert FAULTY_ALERTS <= names, f"missing: {FAULTY_ALERTS - names}\n{scenario.prom.log()[-3000:]}"
    drifted = {a["feature"] for a in firing if a["alertname"] == "ModelServerFeatureDrift"}
    assert drifted == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert all(a["model"] == "iris-classifier" for a in firing)


def test_clean_traffic_stays_quiet(scenario: Scenario):
    loud = [a["labels"] for a in scenario.prom.firing() if a["labels"].get("namespace") == "clean"]
    assert loud == []
    pending = [
        a["labels"] for a in scenario.prom.api("alerts")["alerts"] if a["labels"].get("namespace") == "clean"
    ]
    assert pending == []


def test_the_availability_sli_ignores_client_errors_and_counts_shed_requests(scenario: Scenario):
    prom, at = scenario.prom, scenario.end
    client_errors = prom.query(
        'sum(increase(model_server_requests_total{namespace="clean", code=~"4.."}[1m]))', at
    )
    assert finite_values(client_errors)[0] > 10
    sli = {
        r["metric"]["namespace"] + "/" + r["metric"]["model"]: float(r["value"][1])
        for r in prom.query("namespace_model:model_server_availability_errors:ratio_rate5m", at)
    }
    assert sli["clean/iris-classifier"] == 0 and sli["clean/sales-regressor"] == 0
    assert sli["faulty/iris-classifier"] > 14.4 * 0.001


def test_drift_scores_separate_shifted_from_clean_inputs(scenario: Scenario):
    psi = {
        (r["metric"]["namespace"], r["metric"]["model"], r["metric"]["feature"]): float(r["value"][1])
        for r in scenario.prom.query("model_server_feature_drift_psi")
    }
    clean = {k: v for k, v in psi.items() if k[0] == "clean"}
    faulty = {k: v for k, v in psi.items() if k[0] == "faulty"}
    assert len(clean) == 8 and len(faulty) == 4  # every feature of both models
    assert max(clean.values()) < PSI_SIGNIFICANT, clean
    assert min(faulty.values()) > PSI_SIGNIFICANT, faulty


def _panel_queries():
    for uid, board in load_dashboards().items():
        for panel in all_panels(board):
            for target in panel.get("targets", []):
                yield pytest.param(uid, panel, target, id=f"{uid}:{panel['title']}:{target['refId']}")


@pytest.mark.parametrize(("uid", "panel", "target"), list(_panel_queries()))
def test_every_dashboard_query_returns_data(scenario: Scenario, uid, panel, target):
    """Each query, with the variables Grafana would substitute, parses and returns a number for at
    least one model the scenario runs (a classifier-only panel has nothing for the regressor)."""
    prom = scenario.prom
    board = load_dashboards()[uid]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    builtins = {"__rate_interval": rate_interval(SCRAPE_INTERVAL_SECONDS, 2 * SCRAPE_INTERVAL_SECONDS)}
    picks = (
        [{"namespace": t.namespace, "model": t.model} for t in scenario.targets]
        if not variables["namespace"].get("includeAll")
        else [{}]
    )
    start, end, now = scenario.start, scenario.end, time.time()
    got = []
    for pick in picks:
        chosen = resolve_variables(prom, board, start, now, pick)
        expr = grafana_interpolate(target["expr"], variables, chosen, builtins)
        assert "$" not in expr, expr
        if target.get("instant"):  # table panels: at the end of the traffic and now (alerts have fired)
            got += finite_values(prom.query(expr, end)) + finite_values(prom.query(expr, now))
        else:
            got += finite_values(prom.query_range(expr, start, now, 1.0))
    assert got, f"no data for {panel['title']} ({target['refId']}): {target['expr']}"


def test_every_rule_evaluates_cleanly_and_every_recording_rule_returns_data(scenario: Scenario):
    prom = scenario.prom
    groups = prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in load_rules()["groups"])
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, broken  # e.g. many-to-many matching errors only show when evaluated on real data
    for rule in rules:
        result = prom.query(rule["query"])  # parses (the API refuses what it cannot parse)
        if rule["type"] == "recording":
            assert finite_values(result), f"{rule['name']} returns no data"


def test_every_metric_the_dashboards_and_rules_name_exists_in_the_real_scrape(scenario: Scenario):
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


def test_adapter_query_returns_requests_per_second_per_pod(scenario: Scenario):
    """prometheus-adapter's rule, with its templates filled in as the adapter does for
    GET /apis/custom.metrics.k8s.io/v1beta1/namespaces/clean/pods/*/model_server_requests_per_second."""
    rule = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"][0]
    prom = scenario.prom
    # discovery: the seriesQuery finds the counter with the namespace and pod labels it maps
    series = prom.series(rule["seriesQuery"], scenario.start, time.time())
    assert {(s["namespace"], s["pod"]) for s in series} >= {
        ("clean", "iris-clean-0"),
        ("faulty", "iris-faulty-0"),
    }
    pods = sorted(t.pod for t in scenario.targets if t.namespace == "clean")
    query = (
        rule["metricsQuery"]
        .replace("<<.Series>>", "model_server_requests_total")
        .replace("<<.LabelMatchers>>", f'namespace="clean",pod=~"{"|".join(pods)}"')
        .replace("<<.GroupBy>>", "pod")
    )
    result = prom.query(query, scenario.end - 1)
    per_pod = {r["metric"]["pod"]: float(r["value"][1]) for r in result}
    assert set(per_pod) == set(pods), per_pod
    for pod, rps in per_pod.items():
        assert math.isfinite(rps) and rps > 1, (pod, rps)
    # only prediction requests count: Prometheus's own scrapes of /metrics reach every pod, and the
    # adapter's value leaves them out (its rate without the route filter is higher by at least theirs)
    route_filter = re.search(r',route=~"[^"]+"', query).group(0)

    def by_pod(expr: str) -> dict[str, float]:
        return {r["metric"]["pod"]: float(r["value"][1]) for r in prom.query(expr, scenario.end - 1)}

    every_route = by_pod(query.replace(route_filter, ""))
    scrapes = by_pod(query.replace(route_filter, ',route="/metrics"'))
    for pod in pods:
        assert scrapes[pod] > 0, (pod, scrapes)
        assert every_route[pod] - per_pod[pod] >= scrapes[pod] * (1 - 1e-9), (pod, every_route, per_pod)
