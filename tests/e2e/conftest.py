"""Fixtures of the cluster suite (`make e2e`; `make test` does not collect this folder).

It runs against whatever cluster KUBECONFIG names: this machine's (`make cluster`) or kind in GitHub
Actions. Each test gets its own namespace, enforcing the `restricted` Pod Security Standard unless the
test asks otherwise, removed afterwards; tests run in parallel (pytest-xdist) without sharing anything
but the cluster. A failed test prints its namespace's objects, pod descriptions and events.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator

import pytest
from support.cluster import MANAGED_BY, Image, describe, kubectl, kubectl_json, tool, wait_until

# Namespaces this worker created: waited for at the end of its session, so a run leaves none behind.
_created: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def cluster() -> str:
    """The cluster answers (else every test fails with the reason); returns its server version."""
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("KUBECONFIG is not set: run the suite with `make e2e`", pytrace=False)
    tool("helm")
    version = kubectl_json("version")["serverVersion"]["gitVersion"]
    assert kubectl("get", "--raw", "/readyz").strip() == "ok"
    return str(version)


@pytest.fixture(scope="session")
def server_image() -> Image:
    """The image `make images` built from service/Dockerfile and `make e2e` loaded into the cluster."""
    ref = os.environ.get("E2E_SERVER_IMAGE")
    if not ref:
        pytest.fail("E2E_SERVER_IMAGE is not set: run the suite with `make e2e`", pytrace=False)
    return Image.parse(ref)


def _namespace_name(nodeid: str) -> str:
    test = re.sub(r"[^a-z0-9]+", "-", nodeid.split("::")[-1].lower()).strip("-")
    digest = hashlib.sha256(f"{nodeid}{time.time_ns()}".encode()).hexdigest()[:5]
    return f"e2e-{test[:40].strip('-')}-{digest}"


@pytest.fixture
def pod_security() -> str:
    """The Pod Security Standard a test's namespace enforces; override the fixture to change it."""
    return "restricted"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, cluster: str, pod_security: str) -> Iterator[str]:
    name = _namespace_name(request.node.nodeid)
    kubectl("create", "namespace", name)
    _created.append(name)
    kubectl(
        "label",
        "namespace",
        name,
        f"pod-security.kubernetes.io/enforce={pod_security}",
        "pod-security.kubernetes.io/enforce-version=latest",
        f"app.kubernetes.io/managed-by={MANAGED_BY}",
    )
    yield name
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"\n=== namespace {name} after the failure ===\n{describe(name)}")
    kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="session", autouse=True)
def _namespaces_removed() -> Iterator[None]:
    yield
    if _created:
        wait_until(
            lambda: (
                not set(_created)
                & {n["metadata"]["name"] for n in kubectl_json("get", "namespaces")["items"]}
            ),
            180,
            f"the suite's namespaces to be deleted: {_created}",
            interval=2,
        )
