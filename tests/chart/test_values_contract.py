"""What the chart promises to its neighbours: the server's settings, the monitoring files, rollouts on a
model change, and a README that matches values.yaml."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from chart.support import CHART, one, render, run, tool
from model_server.settings import Settings

EVERY_SETTING = {
    "server": {
        "port": 9000,
        "logLevel": "debug",
        "maxBodyBytes": 1048576,
        "maxRequestRows": 10000,
        "maxInFlight": 32,
        "requestTimeoutSeconds": 2.5,
        "returnProbabilities": True,
        "trustedTypes": ["sklearn.ensemble._forest.ExtraTreesClassifier"],
        "allowSklearnVersionMismatch": True,
        "arrayInput": False,
        "logRequestBodies": True,
        "driftWindowRows": 5000,
        "maxArtifactUnpackedBytes": 8589934592,
        "shutdownGraceSeconds": 40,
    },
    "batching": {"enabled": False, "maxRows": 128, "maxWaitMs": 0.5, "queueRows": 4096},
    "auth": {"enabled": True, "existingSecret": "tokens"},
}


def server_env(docs: list[dict]) -> dict[str, str]:
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_every_env_var_the_chart_sets_is_a_server_setting_and_parses(tmp_path: Path) -> None:
    """The chart and model_server.settings agree on names and formats: the server reads back exactly
    the values given to the chart (this is what would break if either side renamed a setting)."""
    values = tmp_path / "all.yaml"
    values.write_text(yaml.safe_dump(EVERY_SETTING))
    env = server_env(render(values))
    known = {name.upper() for name in Settings.__dataclass_fields__ if name != "extra"}
    assert set(env) <= known, f"the chart sets variables the server does not read: {set(env) - known}"
    s = Settings.from_env(env)
    assert (s.port, s.log_level, s.max_body_bytes, s.max_request_rows, s.max_in_flight) == (
        9000,
        "debug",
        1048576,
        10000,
        32,
    )
    assert s.request_timeout_seconds == 2.5
    assert s.return_probabilities and s.allow_sklearn_version_mismatch and s.log_request_bodies
    assert s.array_input is False
    assert s.trusted_types == ("sklearn.ensemble._forest.ExtraTreesClassifier",)
    assert s.drift_window_rows == 5000 and s.shutdown_grace_seconds == 40
    assert s.max_artifact_unpacked_bytes == 8589934592  # 8 GiB: no float notation on the way
    assert (s.batching, s.batch_max_rows, s.batch_max_wait_ms, s.batch_queue_rows) == (False, 128, 0.5, 4096)
    assert str(s.auth_tokens_file) == "/var/run/secrets/model-server/auth/tokens"
    assert (s.host, s.model_name, s.model_version) == ("0.0.0.0", "iris-classifier", "1.0.0")


def test_default_env_parses_and_leaves_tunables_to_the_server() -> None:
    env = server_env(render())
    s = Settings.from_env(env)
    defaults = Settings()
    assert s.max_body_bytes == defaults.max_body_bytes
    assert s.request_timeout_seconds == defaults.request_timeout_seconds
    assert s.batching is True
    assert s.array_input is True
    # `null` leaves the variable out: unset, the server derives the zip-bomb cap from the pod's memory limit.
    assert s.max_artifact_unpacked_bytes is None
    assert str(s.model_bundle) == "/opt/model-server/bundles/iris-classifier"


def test_drift_window_0_reaches_the_server_as_drift_off() -> None:
    """0 is the server's "drift tracking off" (drift.build_drift_monitor; tests/monitoring/test_drift.py
    checks what off means), so the chart must pass it on rather than drop it as an unset value."""
    s = Settings.from_env(server_env(render(sets={"server.driftWindowRows": "0"})))
    assert s.drift_window_rows == 0


def test_changing_the_model_version_rolls_the_pods_but_never_the_selector() -> None:
    before = one(render(), "Deployment")
    after = one(render(sets={"model.version": '"1.1.0"'}), "Deployment")
    assert after["spec"]["selector"] == before["spec"]["selector"]
    assert after["spec"]["template"] != before["spec"]["template"]
    checksum = before["spec"]["template"]["metadata"]["annotations"]["checksum/model"]
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/model"] != checksum
    # ... and settings that are not about the model leave the checksum alone.
    other = one(render(sets={"replicaCount": "3", "server.logLevel": '"debug"'}), "Deployment")
    assert other["spec"]["template"]["metadata"]["annotations"]["checksum/model"] == checksum
    # Every selector in the chart (Service, PDB, NetworkPolicy, ServiceMonitor, HPA target) is name +
    # instance only, so none changes with the model either.
    sets = {
        "podDisruptionBudget.enabled": "true",
        "networkPolicy.enabled": "true",
        "monitoring.serviceMonitor.enabled": "true",
        "model.version": '"9.9.9"',
    }
    selector = {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": "iris"}
    for doc in render(sets=sets):
        spec = doc.get("spec", {})
        sel = spec.get("selector") if doc["kind"] != "Service" else {"matchLabels": spec["selector"]}
        if doc["kind"] == "NetworkPolicy":
            sel = spec["podSelector"]
        if sel is not None and doc["kind"] != "Pod":
            assert sel == {"matchLabels": selector}, doc["kind"]


def test_monitoring_resources_embed_exactly_the_generated_files() -> None:
    """One source of truth: the PrometheusRule carries files/prometheus-rules.yaml's groups and the
    dashboards ConfigMap one key per files/dashboards/*.json, byte for byte."""
    docs = render(sets={"monitoring.prometheusRule.enabled": "true", "monitoring.dashboards.enabled": "true"})
    rules_file = CHART / "files" / "prometheus-rules.yaml"
    dashboards = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert rules_file.exists() and dashboards, "the monitoring area generates charts/model-server/files/"
    rule = one(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"]
    cm = one(docs, "ConfigMap")
    assert sorted(cm["data"]) == [p.name for p in dashboards]
    for p in dashboards:
        assert cm["data"][p.name] == p.read_text().rstrip("\n")
        json.loads(cm["data"][p.name])


def test_chart_without_generated_files_renders_and_says_so(tmp_path: Path) -> None:
    """A chart packaged without files/ still installs: no empty PrometheusRule or ConfigMap, and NOTES
    explains why."""
    chart = tmp_path / "model-server"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files", "tests"))
    sets = {
        "monitoring.prometheusRule.enabled": True,
        "monitoring.dashboards.enabled": True,
        "monitoring.serviceMonitor.enabled": True,
    }
    kinds = [d["kind"] for d in render(sets={k: json.dumps(v) for k, v in sets.items()}, chart=chart)]
    assert "PrometheusRule" not in kinds and "ConfigMap" not in kinds
    assert "ServiceMonitor" in kinds and "Deployment" in kinds
    # helm template does not print NOTES.txt and a dry-run install needs a cluster: helm-unittest renders it.
    (chart / "tests").mkdir()
    (chart / "tests" / "notes_test.yaml").write_text(
        yaml.safe_dump(
            {
                "suite": "notes without files",
                "templates": ["templates/NOTES.txt"],
                "capabilities": {"majorVersion": "1", "minorVersion": "33"},
                "tests": [
                    {
                        "it": "warns",
                        "set": sets,
                        "asserts": [
                            {"matchRegexRaw": {"pattern": "no PrometheusRule was rendered"}},
                            {"matchRegexRaw": {"pattern": "no dashboards ConfigMap was rendered"}},
                        ],
                    }
                ],
            }
        )
    )
    proc = run([tool("helm"), "unittest", "--color=false", str(chart)], check=False)
    assert proc.returncode == 0, proc.stdout


def test_readme_values_table_is_current() -> None:
    proc = run([sys.executable, str(CHART / "hack" / "values_table.py"), "--check"], check=False)
    assert proc.returncode == 0, proc.stderr


def test_readme_generator_refuses_an_undocumented_value(tmp_path: Path) -> None:
    chart = tmp_path / "model-server"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files", "tests"))
    values = (chart / "values.yaml").read_text()
    (chart / "values.yaml").write_text(
        values.replace("replicaCount: 1\n", "replicaCount: 1\nundocumented: 2\n")
    )
    sys.path.insert(0, str(chart / "hack"))
    try:
        import values_table
    finally:
        sys.path.pop(0)
    with pytest.raises(values_table.ValuesDocError, match="`undocumented` has no `# --` comment"):
        values_table.rows(chart)
    rows = values_table.rows(CHART)
    assert {"model.version", "autoscaling.metrics", "probes.startup.failureThreshold"} <= {
        r.key for r in rows
    }


def test_url_scenario_pins_the_sha256_of_the_demo_archive(demo_bundles: Path, tmp_path: Path) -> None:
    """ci/url-hpa-pdb-netpol-values.yaml pins the sha256 of the demo bundle's archive, which
    `model-server archive` makes byte-reproducibly: a change of the demo bundle must update the pin
    (tests/e2e installs the scenario against that archive served in the cluster)."""
    archive = tmp_path / "iris-classifier-1.0.0.tar.gz"
    run(
        [
            str(Path(sys.executable).parent / "model-server"),
            "archive",
            str(demo_bundles / "iris-classifier"),
            str(archive),
        ]
    )
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    scenario = CHART / "ci" / "url-hpa-pdb-netpol-values.yaml"
    pinned = yaml.safe_load(scenario.read_text())["model"]["source"]["url"]["sha256"]
    assert pinned == sha, (
        f"the demo bundle's archive changed: set model.source.url.sha256 in {scenario.name} to {sha}"
    )
