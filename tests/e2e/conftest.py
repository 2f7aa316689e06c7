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
from typing import Any

import pytest
from support.cluster import (
    CREATED_NAMESPACES,
    Image,
    create_namespace,
    delete_namespace,
    kubectl,
    kubectl_json,
    tool,
    wait_until,
)
from xdist.scheduler import LoadScopeScheduling


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
    name = create_namespace(_namespace_name(request.node.nodeid), pod_security)
    yield name
    report = getattr(request.node, "report_call", None)
    delete_namespace(name, report is not None and report.failed)


# Tests run one by one on whichever worker is free, except those of a module that sets up one scenario
# for all its tests (a module-scoped fixture): those run together on one worker, so the scenario is
# built once. (pytest-xdist's --dist loadgroup would do this with a marker, but does not schedule with
# this pytest.)
SHARED_SCENARIO_MODULES = ("tests/e2e/test_monitoring.py", "tests/e2e/test_gitops.py")


class _SharedScenarioScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if module.endswith(SHARED_SCENARIO_MODULES) else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling:
    return _SharedScenarioScheduling(config, log)


# Single tests of minutes each (an HPA's windows, canary analyses, rollouts under load).
LONG_MODULES = ("tests/e2e/test_autoscaling.py", "tests/e2e/test_canary.py", "tests/e2e/test_rollouts.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The shared scenarios first, then the long single tests: the scheduler hands out work in
    collection order, so starting the longest runs at once keeps them off the suite's critical path
    and leaves the short tests to fill the workers' gaps."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        return 0 if module.endswith(SHARED_SCENARIO_MODULES) else 1 if module.endswith(LONG_MODULES) else 2

    items.sort(key=rank)


@pytest.fixture(scope="session", autouse=True)
def _namespaces_removed() -> Iterator[None]:
    yield
    if CREATED_NAMESPACES:
        wait_until(
            lambda: (
                not set(CREATED_NAMESPACES)
                & {n["metadata"]["name"] for n in kubectl_json("get", "namespaces")["items"]}
            ),
            180,
            f"the suite's namespaces to be deleted: {CREATED_NAMESPACES}",
            interval=2,
        )
