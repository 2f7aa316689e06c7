"""The chart's contract with the server: render the chart, start the server exactly as the rendered
Deployment says (command, args, env, ports, mounts), and check each probe answers as Kubernetes needs it
(startup -> ready -> live), a prediction works, SIGTERM drains in time, and the `helm test` pod's own
command passes against it.

Every container path is mapped to a host directory (tests/support/pods.py); the executable is the
package installed in .venv, which test_image.py shows is installed the way the image installs it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.helm import one, render
from support.paths import CHART, ROOT
from support.pods import Mounts, Process, container_argv, container_env, http, pod_mounts, probe, wait_for
from support.serverproc import free_port
from support.tools import run

pytestmark = pytest.mark.slow

VENV_BIN = ROOT / ".venv" / "bin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where the image keeps its bundles (service/Dockerfile); here: the demo bundles the tests build.
IMAGE_BUNDLES = "/opt/model-server/bundles"
IRIS_ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def pod(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def start(container: dict[str, Any], mounts: Mounts, workdir: Path) -> Process:
    path = f"{VENV_BIN}:{SYSTEM_PATH}"
    return Process(container_argv(container, mounts, path), container_env(container, mounts, path), workdir)


def predict(container: dict[str, Any], body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    port = container["ports"][0]["containerPort"]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, raw = http("POST", f"http://127.0.0.1:{port}/predict", json.dumps(body).encode(), headers)
    assert status == 200, raw
    return json.loads(raw)


def run_test_pod(docs: list[dict[str, Any]], base_url: str, mounts: Mounts, workdir: Path) -> str:
    """The `helm test` pod's container, run as rendered except that BASE_URL (a cluster DNS name) points at
    the local server."""
    test_pod = next(d for d in docs if d["kind"] == "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = test_pod["spec"]["containers"][0]
    path = f"{VENV_BIN}:{SYSTEM_PATH}"
    env = container_env(container, mounts, path)
    assert env["BASE_URL"].startswith("http://iris-model-server.models.svc:")
    env["BASE_URL"] = base_url
    if "GRPC_TARGET" in env:
        # The Service's gRPC port forwards to the container's: here the server's own.
        assert env["GRPC_TARGET"].startswith("iris-model-server.models.svc:")
        grpc_port = next(p["containerPort"] for p in pod(docs)[1]["ports"] if p["name"] == "grpc")
        env["GRPC_TARGET"] = f"127.0.0.1:{grpc_port}"
    proc = run(container_argv(container, mounts, path), check=False, env=env, cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_default_install_starts_ready_live_predicts_and_drains(demo_bundles: Path, tmp_path: Path) -> None:
    docs = render(sets={"server.port": str(free_port()), "grpc.port": str(free_port())})
    spec, container = pod(docs)
    mounts = pod_mounts(spec, container, {"tmp": tmp_path}, {IMAGE_BUNDLES: demo_bundles})
    with start(container, mounts, tmp_path) as proc:
        # startup: the kubelet polls the startup probe until it succeeds; liveness and readiness only
        # begin after that. Anything but 200 (or no answer yet) means "keep waiting".
        wait_for(lambda: probe(container, "startup")[0] == 200, 60, "the startup probe", proc)
        status, body = probe(container, "readiness")
        assert status == 200, body
        assert json.loads(body)["version"] == "1.0.0"
        assert probe(container, "liveness")[0] == 200

        answer = predict(container, {"instances": [IRIS_ROW]})
        assert answer == {
            "model_name": "iris-classifier",
            "model_version": "1.0.0",
            "predictions": ["setosa"],
        }

        port = container["ports"][0]["containerPort"]
        out = run_test_pod(docs, f"http://127.0.0.1:{port}", mounts, tmp_path)
        assert "OK: iris-classifier 1.0.0 predicted" in out
        assert "OK: iris-classifier 1.0.0 answered over gRPC" in out

        # Termination: the preStop sleep runs in the kubelet, then SIGTERM; the server must drain and
        # exit 0 before the grace period's remainder runs out.
        grace = spec["terminationGracePeriodSeconds"] - container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert proc.stop(timeout=grace) == 0, proc.log()


def test_bad_model_version_stays_live_and_not_ready(demo_bundles: Path, tmp_path: Path) -> None:
    """The chart sends MODEL_VERSION: a bundle that is not the version the release asks for must keep the
    pod out of the Service (readiness 503 naming the problem) without liveness restarting it."""
    docs = render(
        sets={"server.port": str(free_port()), "grpc.port": str(free_port()), "model.version": '"2.0.0"'}
    )
    spec, container = pod(docs)
    mounts = pod_mounts(spec, container, {"tmp": tmp_path}, {IMAGE_BUNDLES: demo_bundles})
    with start(container, mounts, tmp_path) as proc:
        wait_for(lambda: probe(container, "liveness")[0] == 200, 60, "the liveness probe", proc)

        def settled() -> bool:
            status, body = probe(container, "readiness")
            return status == 503 and b"2.0.0" in body

        wait_for(settled, 30, "readiness to report the version mismatch", proc)
        assert probe(container, "startup")[0] == 503
        assert probe(container, "liveness")[0] == 200
        assert proc.stop(timeout=30) == 0


@pytest.fixture
def bundle_archive_server(demo_bundles: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The demo iris bundle's archive (made by `model-server archive`) served over HTTP on loopback."""
    site = tmp_path / "site"
    site.mkdir()
    archive = site / "iris-classifier-1.0.0.tar.gz"
    run([str(VENV_BIN / "model-server"), "archive", str(demo_bundles / "iris-classifier"), str(archive)])

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(site), **kw)

        def log_message(self, *a: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{archive.name}"
        yield url, hashlib.sha256(archive.read_bytes()).hexdigest()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_url_scenario_fetches_with_its_init_container_then_serves(
    bundle_archive_server: tuple[str, str], tmp_path: Path
) -> None:
    """ci/url-hpa-pdb-netpol-values.yaml as kind installs it, with the archive served locally: the init
    container's exact command fills the shared emptyDir, the server loads it from there."""
    url, sha = bundle_archive_server
    scenario = CHART / "ci" / "url-hpa-pdb-netpol-values.yaml"
    pinned = yaml.safe_load(scenario.read_text())["model"]["source"]["url"]["sha256"]
    assert pinned == sha, (
        f"the demo bundle's archive changed: set model.source.url.sha256 in {scenario.name} to {sha}"
    )
    docs = render(
        scenario,
        sets={
            "server.port": str(free_port()),
            "grpc.port": str(free_port()),
            "model.source.url.uri": json.dumps(url),
        },
    )
    spec, container = pod(docs)
    models, tmp = tmp_path / "models-emptydir", tmp_path / "tmp-emptydir"
    models.mkdir()
    tmp.mkdir()
    volumes = {"models": models, "tmp": tmp}

    init = spec["initContainers"][0]
    init_mounts = pod_mounts(spec, init, volumes, {})
    path = f"{VENV_BIN}:{SYSTEM_PATH}"
    fetched = run(
        container_argv(init, init_mounts, path),
        check=False,
        env=container_env(init, init_mounts, path),
        cwd=tmp,
    )
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert sorted(p.name for p in models.iterdir()) == ["metadata.json", "model.skops"]

    mounts = pod_mounts(spec, container, volumes, {})
    with start(container, mounts, tmp) as proc:
        wait_for(lambda: probe(container, "startup")[0] == 200, 60, "the startup probe", proc)
        assert probe(container, "readiness")[0] == 200
        assert probe(container, "liveness")[0] == 200
        assert predict(container, {"instances": [IRIS_ROW]})["predictions"] == ["setosa"]
        assert proc.stop(timeout=30) == 0


def test_init_container_refuses_an_archive_with_another_sha256(
    bundle_archive_server: tuple[str, str], tmp_path: Path
) -> None:
    url, sha = bundle_archive_server
    wrong = hashlib.sha256(b"another archive").hexdigest()
    docs = render(
        sets={
            "model.source.type": '"url"',
            "model.source.url.uri": json.dumps(url),
            "model.source.url.sha256": json.dumps(wrong),
        }
    )
    spec, _ = pod(docs)
    init = spec["initContainers"][0]
    models = tmp_path / "models"
    models.mkdir()
    mounts = pod_mounts(spec, init, {"models": models, "tmp": tmp_path}, {})
    path = f"{VENV_BIN}:{SYSTEM_PATH}"
    proc = run(container_argv(init, mounts, path), check=False, env=container_env(init, mounts, path))
    assert proc.returncode != 0
    assert sha in proc.stdout + proc.stderr or wrong in proc.stdout + proc.stderr
    assert list(models.iterdir()) == []


def test_monitoring_scenario_with_auth_serves_the_string_feature_model(
    demo_bundles: Path, tmp_path: Path
) -> None:
    """ci/monitoring-values.yaml (sales-regressor, a string feature) with auth on: the tokens Secret is
    mounted, predictions need the token, probes do not, and the helm test pod sends it."""
    token = "t0k3n-for-the-contract-test-0123456789"
    secret = tmp_path / "auth-secret"
    secret.mkdir()
    (secret / "tokens").write_text(f"# rotated weekly\n{token}\n")
    docs = render(
        CHART / "ci" / "monitoring-values.yaml",
        sets={
            "server.port": str(free_port()),
            "grpc.port": str(free_port()),
            "auth.enabled": "true",
            "auth.existingSecret": '"sales-tokens"',
        },
    )
    spec, container = pod(docs)
    volumes = {"tmp": tmp_path, "auth": secret}
    mounts = pod_mounts(spec, container, volumes, {IMAGE_BUNDLES: demo_bundles})
    with start(container, mounts, tmp_path) as proc:
        wait_for(lambda: probe(container, "startup")[0] == 200, 60, "the startup probe", proc)
        assert probe(container, "liveness")[0] == 200
        port = container["ports"][0]["containerPort"]
        row = yaml.safe_load((CHART / "ci" / "monitoring-values.yaml").read_text())["tests"]["request"]
        status, _ = http(
            "POST",
            f"http://127.0.0.1:{port}/predict",
            json.dumps(row).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 401
        assert predict(container, row, token=token)["model_name"] == "sales-regressor"

        test_pod = next(d for d in docs if d["kind"] == "Pod")
        test_mounts = pod_mounts(test_pod["spec"], test_pod["spec"]["containers"][0], volumes, {})
        out = run_test_pod(docs, f"http://127.0.0.1:{port}", test_mounts, tmp_path)
        assert "OK: sales-regressor 1.0.0 predicted" in out
        assert "OK: sales-regressor 1.0.0 answered over gRPC" in out  # with the token, BYTES for region
        assert proc.stop(timeout=30) == 0
