"""What the chart promises to its neighbours: the server's settings, rollouts on a model change, and a
value table in which every value is documented."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from model_server.settings import Settings
from support.helm import one, render
from support.paths import CHART
from support.tools import run, tool

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
SETTINGS = fields(Settings)
EXPOSED = [f for f in SETTINGS if f.metadata["values"] is not None]
# Chart values under server/batching that are not one server setting each.
CHART_ONLY = {"server.extraEnv"}


def lookup(tree: dict[str, Any], dotted: str, child: str | None = None) -> Any:
    """``tree``'s entry at a dotted values path (``child``: the key schemas nest properties under)."""
    node: Any = tree
    for key in dotted.split("."):
        node = node[child] if child else node
        assert isinstance(node, dict) and key in node, f"no {dotted} ({key})"
        node = node[key]
    return node


def sample(f: Any, schema: dict[str, Any]) -> Any:
    """A valid chart value for setting ``f`` that differs from its default."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "boolean" in kinds:
        return not f.default
    if "enum" in schema:
        return next(v for v in schema["enum"] if v != f.default)
    if "array" in kinds:
        return ["sklearn.ensemble._forest.ExtraTreesClassifier"]
    if "integer" in kinds:
        return 2**33 if f.default is None else int(f.default) * 2 + 1  # 2**33: no float notation on the way
    if "number" in kinds:
        return float(f.default) * 2 + 0.5
    return f"sample-{f.name.replace('_', '-')}"


def server_env(docs: list[dict]) -> dict[str, str]:
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_each_setting_is_a_documented_chart_value_or_says_why_not() -> None:
    """settings.py is the one list: each setting names its chart value, which values.yaml and
    values.schema.json hold, or gives the reason the chart has none; and every chart value under
    server/batching is some setting's."""
    for f in SETTINGS:
        path, reason = f.metadata["values"], f.metadata["not_a_value"]
        assert (path is None) != (reason is None), f.name
        assert f.metadata["why"], f.name
        if path is None:
            assert len(reason) > 20, f"{f.name}: say why the chart has no value for it"
            continue
        lookup(VALUES, path)
        lookup(SCHEMA, path, child="properties")
    wired = {f.metadata["values"] for f in EXPOSED}
    chart = {f"{section}.{key}" for section in ("server", "batching") for key in VALUES[section]}
    assert chart - CHART_ONLY <= wired, (
        f"chart values that set no server setting: {chart - CHART_ONLY - wired}"
    )


def test_every_exposed_setting_reaches_the_server_through_the_env_mapping(tmp_path: Path) -> None:
    """A value given to the chart for each exposed setting comes back from Settings.from_env exactly:
    this breaks if the chart's env mapping or settings.py renames, drops or mis-formats one."""
    samples = {f.name: sample(f, lookup(SCHEMA, f.metadata["values"], child="properties")) for f in EXPOSED}
    values: dict[str, Any] = {"auth": {"enabled": True, "existingSecret": "tokens"}}
    for f in EXPOSED:
        *parents, key = f.metadata["values"].split(".")
        node = values
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = samples[f.name]
    values_file = tmp_path / "all.yaml"
    values_file.write_text(yaml.safe_dump(values))
    env = server_env(render(values_file))
    known = {f.name.upper() for f in SETTINGS}
    assert set(env) <= known, f"the chart sets variables the server does not read: {set(env) - known}"
    s = Settings.from_env(env)
    for name, given in samples.items():
        expected = tuple(given) if isinstance(given, list) else given
        assert getattr(s, name) == expected, name
    # The settings the chart sets itself.
    assert str(s.auth_tokens_file) == "/var/run/secrets/model-server/auth/tokens"
    assert s.host == "0.0.0.0"
    assert str(s.model_bundle) == f"/opt/model-server/bundles/{samples['model_name']}"


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
    """0 is the server's "drift tracking off" (drift.build_drift_monitor; tests/unit/runtime/test_drift.py
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


def values_table(chart: Path) -> dict[str, str]:
    """{key: description} of the values table helm-docs writes into the chart's README (rendered, not
    read from the file: `make lint` checks that the file is current)."""
    proc = run(
        [tool("helm-docs"), "--dry-run", "--sort-values-order", "file", "--chart-search-root", str(chart)],
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = re.findall(r"^\| (\S+) \| [^|]+ \| .*? \| (.*) \|$", proc.stdout, flags=re.MULTILINE)
    assert rows, proc.stdout
    return dict(rows)


@pytest.mark.parametrize("chart", [CHART, CHART.parent / "platform-monitoring"], ids=lambda c: c.name)
def test_every_value_is_documented_where_it_is_defined(chart: Path) -> None:
    """helm-docs lists a value without a `# --` comment with an empty description: there must be none."""
    table = values_table(chart)
    assert not [key for key, description in table.items() if not description.strip()]
    if chart == CHART:
        assert {"model.version", "autoscaling.metrics", "probes.startup.failureThreshold"} <= set(table)


def test_an_undocumented_value_shows_up_in_the_check(tmp_path: Path) -> None:
    chart = tmp_path / "model-server"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files", "tests"))
    with (chart / "values.yaml").open("a") as values:
        values.write("undocumented: 2\n")
    table = values_table(chart)
    assert table["undocumented"].strip() == ""
