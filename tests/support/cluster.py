"""Helpers of the cluster suite (tests/e2e): kubectl and the project's pinned helm
against the cluster KUBECONFIG names, waits that assert on states, the in-cluster traffic client, and
reading in-cluster HTTP APIs through `kubectl port-forward` (portable to kind, unlike a ClusterIP).

Tools come from the PATH `make e2e` sets (.tools/cluster/bin for kubectl, .tools/bin for helm); a
missing one is a failure naming the make target, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .paths import CHART
from .tools import tool, tools_env

# The traffic client a pod runs (python -c): stdlib only, so any image with Python runs it.
CLIENT_SOURCE = (Path(__file__).parent / "podclient.py").read_text()
# The HTTP server of bundle archives a pod runs for the `url` source (python -c).
BUNDLE_SERVER_SOURCE = (Path(__file__).parent / "bundleserver.py").read_text()
# The demo bundle the server image carries.
IMAGE_BUNDLE = "/opt/model-server/bundles/iris-classifier"
# The labels every namespace of the suite carries: `restricted` enforced unless a test says otherwise,
# and a marker to find leftovers of an interrupted run.
MANAGED_BY = "model-server-e2e"
T = TypeVar("T")


def run(args: list[str], *, input: str | None = None, check: bool = True, timeout: float = 300) -> str:
    proc = subprocess.run(args, input=input, env=tools_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
    return run([tool("kubectl"), *args], input=input, check=check, timeout=timeout)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def apply(namespace: str, *objects: dict[str, Any]) -> None:
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )


def helm(*args: str, timeout: float = 400) -> str:
    return run([tool("helm"), *args], timeout=timeout)


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> Image:
        repository, _, tag = ref.rpartition(":")
        assert repository and tag and "/" in repository, f"not an image reference: {ref!r}"
        return cls(repository, tag)

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"

    def values(self) -> dict[str, Any]:
        """The only chart values a plain install needs: the locally built image."""
        return {"image": {"repository": self.repository, "tag": self.tag}}


def helm_install(
    release: str,
    namespace: str,
    values: dict[str, Any],
    *,
    wait: bool = True,
    upgrade: bool = False,
    timeout: str = "4m",
) -> str:
    """`helm install` (or `upgrade`) of charts/model-server with these values (as one values file)."""
    values_file = (
        Path(os.environ.get("TMPDIR", "/tmp")) / f"values-{namespace}-{release}-{time.monotonic_ns()}.json"
    )
    values_file.write_text(json.dumps(values))
    try:
        args = [
            "upgrade" if upgrade else "install",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--values",
            str(values_file),
        ]
        if wait:
            args += ["--wait", "--timeout", timeout]
        return helm(*args)
    finally:
        values_file.unlink()


def helm_uninstall(release: str, namespace: str) -> str:
    return helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "2m")


def helm_test(release: str, namespace: str) -> str:
    return helm("test", release, "--namespace", namespace, "--logs", "--timeout", "3m")


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    """Poll ``check`` until it returns something truthy; on timeout fail with its last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (AssertionError, OSError) as e:  # not there yet: a failed kubectl, a port not open
            last = e
        if last and not isinstance(last, (AssertionError, OSError)):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")
        time.sleep(interval)


# Namespaces this worker created: waited for at the end of its session (tests/e2e/conftest.py), so a run
# leaves none behind.
CREATED_NAMESPACES: list[str] = []


def create_namespace(name: str, pod_security: str = "restricted") -> str:
    """A namespace of the suite, enforcing ``pod_security`` and labelled as the suite's."""
    kubectl("create", "namespace", name)
    CREATED_NAMESPACES.append(name)
    kubectl(
        "label",
        "namespace",
        name,
        f"pod-security.kubernetes.io/enforce={pod_security}",
        "pod-security.kubernetes.io/enforce-version=latest",
        f"app.kubernetes.io/managed-by={MANAGED_BY}",
    )
    return name


def delete_namespace(name: str, failed: bool) -> None:
    """Delete without waiting; after a failure, print what the namespace held first."""
    if failed:
        print(f"\n=== namespace {name} after the failure ===\n{describe(name)}")
    kubectl("delete", "namespace", name, "--wait=false")


def pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    return kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return None


def restarts(pod: dict[str, Any]) -> int:
    return sum(s.get("restartCount", 0) for s in pod.get("status", {}).get("containerStatuses", []))


def quantity(value: str) -> float:
    """A Kubernetes quantity as the HPA status and the metrics APIs write it (`1500m`, `3`, `2k`)."""
    m = re.fullmatch(r"([0-9.]+)([mk]?)", value)
    assert m, value
    return float(m[1]) * {"m": 1e-3, "": 1.0, "k": 1e3}[m[2]]


def release_selector(release: str) -> str:
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/name=model-server"


def service(release: str, namespace: str) -> dict[str, Any]:
    """The release's own Service (not a canary's per-version ones, rollout.canary.gatewayAPI)."""
    selector = f"{release_selector(release)},!model-server.io/traffic"
    found = kubectl_json("get", "service", "-n", namespace, "-l", selector)["items"]
    assert len(found) == 1, [s["metadata"]["name"] for s in found]
    return found[0]  # type: ignore[no-any-return]


def service_url(release: str, namespace: str) -> str:
    """The release's Service as a pod in the cluster reaches it."""
    svc = service(release, namespace)
    return f"http://{svc['metadata']['name']}.{namespace}.svc:{svc['spec']['ports'][0]['port']}"


def service_grpc_target(release: str, namespace: str) -> str:
    """HOST:PORT of the release Service's gRPC port, as a pod in the cluster reaches it."""
    svc = service(release, namespace)
    [port] = [p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc"]
    return f"{svc['metadata']['name']}.{namespace}.svc:{port}"


def ready_endpoints(release: str, namespace: str) -> list[str]:
    """Addresses the release's Service sends traffic to (ready endpoints of its EndpointSlices)."""
    name = service(release, namespace)["metadata"]["name"]
    slices = kubectl_json(
        "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={name}"
    )
    return [
        address
        for s in slices["items"]
        for e in s.get("endpoints") or []
        if e["conditions"].get("ready")
        for address in e["addresses"]
    ]


def running_pod(namespace: str, selector: str, timeout: float = 120) -> dict[str, Any]:
    """The one pod of ``selector`` once its first container runs (ready or not)."""

    def check() -> dict[str, Any] | None:
        found = pods(namespace, selector)
        if len(found) != 1:
            return None
        statuses = found[0]["status"].get("containerStatuses") or [{}]
        return found[0] if "running" in statuses[0].get("state", {}) else None

    return wait_until(check, timeout, f"a running pod of {selector} in {namespace}")


# --- Pods of the server image: the traffic client and one-off checks ---------------------------------
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# Traffic clients carry the label the chart's NetworkPolicy scenarios admit (networkPolicy.allowedPodLabels
# in ci/url-hpa-pdb-netpol-values.yaml), so they reach the server on a CNI that enforces policies.
CLIENT_LABELS = {"model-server.io/client": "true"}


def python_pod(
    name: str,
    image: Image,
    source: str,
    args: list[str],
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    volumes: dict[str, tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A pod that runs ``python -c source args...`` in the server image, as `restricted` allows.
    ``volumes`` maps a volume name to (mount path, volume source), e.g. a persistentVolumeClaim."""
    extra = volumes or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, **(labels or {})}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": str(image),
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", source],
                    "args": args,
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"memory": "256Mi"},
                    },
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                    "volumeMounts": [
                        {"name": "tmp", "mountPath": "/tmp"},
                        *({"name": n, "mountPath": path} for n, (path, _) in extra.items()),
                    ],
                }
            ],
            "volumes": [
                {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                *({"name": n, **vol} for n, (_, vol) in extra.items()),
            ],
        },
    }


def bundle_server(image: Image, *args: str) -> list[dict[str, Any]]:
    """The pod and Service `bundles` serving the image's demo bundle as an archive on port 8080
    (tests/support/bundleserver.py; ``args``, e.g. `--version 2.0.0`, go to it)."""
    archive = "iris-classifier-{}.tar.gz"
    version = args[args.index("--version") + 1] if "--version" in args else "1.0.0"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bundles", "labels": {"app": "bundles"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "http",
                    "image": str(image),
                    "command": ["python", "-c", BUNDLE_SERVER_SOURCE, "--bundle", IMAGE_BUNDLE, *args],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"path": "/" + archive.format(version), "port": 8080},
                        "periodSeconds": 1,
                    },
                    "securityContext": RESTRICTED_CONTAINER,
                    # --drifted loads the model with scikit-learn in this process.
                    "resources": {
                        "requests": {"cpu": "20m", "memory": "64Mi"},
                        "limits": {"memory": "384Mi"},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bundles"},
        "spec": {"selector": {"app": "bundles"}, "ports": [{"port": 8080}]},
    }
    return [pod, service]


def serve_bundles(namespace: str, image: Image, *args: str) -> dict[str, tuple[str, str, int]]:
    """Start `bundle_server` and wait until it serves: {version: (the archive's URL, its sha256, its
    size)}, one per archive it serves (`--drifted 3.0.0` adds one)."""
    apply(namespace, *bundle_server(image, *args))
    wait_until(
        lambda: condition(kubectl_json("get", "pod", "-n", namespace, "bundles"), "Ready") == "True",
        120,
        "the bundle server to serve the archive",
    )
    found: dict[str, tuple[str, str, int]] = {}
    for line in kubectl("logs", "-n", namespace, "bundles").splitlines():
        if line.startswith("ARCHIVE"):
            _, path, sha256, size = line.split()
            version = path.removesuffix(".tar.gz").rsplit("-", 1)[1]
            found[version] = (f"http://bundles.{namespace}.svc.cluster.local:8080{path}", sha256, int(size))
    return found


def serve_bundle(namespace: str, image: Image, *args: str) -> tuple[str, str, int]:
    """`serve_bundles` of one archive: (its URL, its sha256, its size)."""
    [archive] = serve_bundles(namespace, image, *args).values()
    return archive


def finished_pod(namespace: str, name: str, timeout: float) -> dict[str, Any]:
    """Wait for a pod with restartPolicy Never to finish; return it (phase Succeeded or Failed)."""

    def done() -> dict[str, Any] | None:
        pod = kubectl_json("get", "pod", "-n", namespace, name)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    return wait_until(done, timeout, f"pod {namespace}/{name} to finish")


def run_python(
    namespace: str,
    image: Image,
    name: str,
    source: str,
    args: list[str],
    timeout: float = 180,
    labels: dict[str, str] | None = None,
    pod: dict[str, Any] | None = None,
) -> str:
    """Run a python pod to completion and return its log; fail with the log unless it succeeded.
    ``pod`` replaces the plain `python_pod` (one with env, volumes, another security context)."""
    apply(namespace, pod or python_pod(name, image, source, args, labels))
    pod = finished_pod(namespace, name, timeout)
    log = kubectl("logs", "-n", namespace, name)
    assert pod["status"]["phase"] == "Succeeded", f"pod {name} {pod['status']['phase']}:\n{log}"
    kubectl("delete", "pod", "-n", namespace, name, "--wait=false")
    return log


def client_result(log: str) -> dict[str, Any]:
    lines = [line for line in log.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"the client printed no result:\n{log}"
    result: dict[str, Any] = json.loads(lines[0].removeprefix("RESULT "))
    return result


def run_client(
    namespace: str,
    image: Image,
    base_url: str,
    model: str,
    *args: str,
    name: str = "client",
    timeout: float = 300,
) -> dict[str, Any]:
    """Send predictions from a pod in the cluster (tests/support/podclient.py) and return its counts."""
    log = run_python(
        namespace,
        image,
        name,
        CLIENT_SOURCE,
        ["--base", base_url, "--model", model, *args],
        timeout,
        CLIENT_LABELS,
    )
    return client_result(log)


def start_client(
    namespace: str, image: Image, base_url: str, model: str, *args: str, name: str = "client"
) -> str:
    """Start a client pod that runs until `stop_client` (for traffic during a rollout); returns its name."""
    stop_file = "/tmp/stop"
    apply(
        namespace,
        python_pod(
            name,
            image,
            CLIENT_SOURCE,
            ["--base", base_url, "--model", model, "--until-file", stop_file, *args],
            CLIENT_LABELS,
        ),
    )
    wait_until(
        lambda: kubectl_json("get", "pod", "-n", namespace, name)["status"].get("phase") == "Running",
        120,
        f"client pod {name} to run",
    )
    return name


def stop_client(namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    kubectl("exec", "-n", namespace, name, "--", "python", "-c", "open('/tmp/stop', 'w').close()")
    finished_pod(namespace, name, timeout)
    return client_result(kubectl("logs", "-n", namespace, name))


# --- In-cluster HTTP APIs from the test process -------------------------------------------------------
class _Forward:
    """One `kubectl port-forward`, restarted on the same local port whenever it ends.

    kubectl ends a forward for good at the first stream error (a connection the pod refused, or the
    kubelet's stream to the API server breaking, which happened under load here); a test that polls
    for minutes would then see "connection refused" for the rest of its wait. So a thread watches the
    process, keeps its output pipes drained (kubectl prints a line per connection), and starts it again,
    printing why it ended so the test's output shows every restart."""

    def __init__(self, namespace: str, target: str, port: int) -> None:
        self.namespace, self.target, self.port = namespace, target, port
        self.local = 0
        self.stopping = threading.Event()
        self.proc = self._start()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                tool("kubectl"),
                "port-forward",
                "-n",
                self.namespace,
                self.target,
                f"{self.local or ''}:{self.port}",
                "--address",
                "127.0.0.1",
            ],
            env=tools_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+) ->", line)
        if not m:
            proc.kill()
            raise AssertionError(f"kubectl port-forward {self.target}: {line}{proc.communicate()[0]}")
        self.local = int(m[1])
        return proc

    def _watch(self) -> None:
        while not self.stopping.is_set():
            assert self.proc.stdout is not None
            said = [line for line in self.proc.stdout if not line.startswith("Handling connection")]
            self.proc.wait()
            if self.stopping.is_set():
                return
            print(
                f"kubectl port-forward {self.target} ended ({self.proc.returncode}): {''.join(said)[-500:]}"
            )
            while not self.stopping.is_set():
                try:
                    self.proc = self._start()
                    if self.stopping.is_set():  # stop() came while it started: it saw the old one
                        self.proc.terminate()
                    break
                except AssertionError as e:  # the pod gone or not ready yet: the test's wait decides
                    print(e)
                    self.stopping.wait(2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local}"

    def stop(self) -> None:
        self.stopping.set()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.watcher.join(15)


@contextmanager
def port_forward(namespace: str, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward` of ``target`` (pod/NAME, service/NAME) to a free port on 127.0.0.1,
    restarted if it ends; yields the base URL http://127.0.0.1:PORT.

    Forward only to a port that already listens (e.g. after the kubelet's probes reached it): kubectl
    ends the forward at the first connection the pod refuses."""
    forward = _Forward(namespace, target, port)
    try:
        yield forward.url
    finally:
        forward.stop()


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One request to a port-forward on loopback, no proxies: (status, JSON or text), 4xx/5xx too."""
    assert url.startswith("http://127.0.0.1:"), f"tests only call loopback: {url}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with opener.open(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def unhealthy_events(namespace: str, pod: str) -> list[str]:
    """The messages of the kubelet's failed-probe events for a pod (`kubectl describe`'s Events)."""
    events = kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={pod},reason=Unhealthy"
    )["items"]
    return [str(e["message"]) for e in events]


def describe(namespace: str) -> str:
    """What a failed test shows about its namespace: objects, pod descriptions, events."""
    parts = []
    for args in (
        ("get", "all,events", "-n", namespace, "-o", "wide"),
        ("describe", "pods", "-n", namespace),
    ):
        parts.append(f"$ kubectl {' '.join(args)}\n" + kubectl(*args, check=False, timeout=60))
    return "\n".join(parts)


def delete_and_watch(namespace: str, pod: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Delete a pod and return every state of it the API showed until it was gone (a `kubectl get -w`
    stream): what its containers' last states were is only visible there once the pod is deleted."""
    args = ["get", "pod", "-n", namespace, pod, "--watch", "--output-watch-events", "-o", "json"]
    watch = subprocess.Popen(
        [tool("kubectl"), *args], env=tools_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert watch.stdout is not None
    stream = watch.stdout
    decoder, states, text = json.JSONDecoder(), [], ""

    def next_event() -> dict[str, Any]:
        """The next whole event of the stream (kubectl prints each object over many lines)."""
        nonlocal text
        while True:
            line = stream.readline()
            assert line, f"kubectl get --watch ended: {watch.stderr.read() if watch.stderr else ''}"
            text += line
            try:
                event, end = decoder.raw_decode(text.lstrip())
            except ValueError:
                continue
            text = text.lstrip()[end:]
            return event  # type: ignore[no-any-return]

    try:
        # The watch first prints the pod as it is: once that arrived, it sees everything after.
        states.append(next_event()["object"])
        kubectl(
            "delete",
            "pod",
            "-n",
            namespace,
            pod,
            "--wait=true",
            f"--timeout={int(timeout)}s",
            timeout=timeout + 10,
        )
        # Read on to the DELETED event: stopping the watch at once could cut the last state mid-object.
        while True:
            event = next_event()
            states.append(event["object"])
            if event["type"] == "DELETED":
                break
    finally:
        watch.terminate()
        watch.communicate(timeout=10)
    return states


# --- A model that could not be fetched ----------------------------------------------------------------
def assert_fetch_failed(namespace: str, release: str, reason: str, timeout: float = 120) -> dict[str, Any]:
    """The `url`/`bucket` init container recorded a failed fetch (`--record-failure`): the pod is live,
    not ready and out of the Service, never restarted, and says ``reason`` in the init container's log,
    the server's log and its `/readyz` answer, while the kubelet's probe events (`kubectl describe`) show
    the 503. Returns what was seen, for the docs."""
    name = running_pod(namespace, release_selector(release), timeout)["metadata"]["name"]
    wait_until(
        lambda: [m for m in unhealthy_events(namespace, name) if "statuscode: 503" in m],
        60,
        f"the kubelet's probe of {name} to get the server's 503",
    )
    pod = kubectl_json("get", "pod", "-n", namespace, name)
    [fetch] = pod["status"]["initContainerStatuses"]
    assert fetch["name"] == "fetch-model"
    # The init container succeeded on purpose: a failing one would restart the pod in `Init:` forever.
    assert fetch["state"]["terminated"]["exitCode"] == 0, fetch
    assert fetch["restartCount"] == 0, fetch
    fetch_log = kubectl("logs", "-n", namespace, name, "-c", "fetch-model")
    assert reason in fetch_log and "recorded the failure" in fetch_log, fetch_log

    def logged() -> str | None:
        log = kubectl("logs", "-n", namespace, name, "-c", "server")
        return log if reason in log else None

    server_log = wait_until(logged, 30, "the server to log why it is not ready")
    assert "the bundle could not be fetched" in server_log, server_log
    with port_forward(namespace, f"pod/{name}", 8000) as base:
        ready_status, ready_body = http("GET", f"{base}/readyz")
        assert ready_status == 503, (ready_status, ready_body)
        assert ready_body["status"] == "failed" and reason in ready_body["reason"], ready_body
        assert http("GET", f"{base}/healthz")[0] == 200
    pod = kubectl_json("get", "pod", "-n", namespace, name)
    assert condition(pod, "Ready") == "False"
    assert restarts(pod) == 0
    assert ready_endpoints(release, namespace) == [], "a pod that is not ready must get no traffic"
    events = unhealthy_events(namespace, name)
    return {"pod": name, "fetch_log": fetch_log, "readyz": ready_body, "events": events}
