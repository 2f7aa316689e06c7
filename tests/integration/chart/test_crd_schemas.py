"""The Argo Rollouts and HTTPRoute schemas kubeconform checks the chart against are those of the CRDs of
the versions the cluster runs (mk/tools.mk's ARGO_ROLLOUTS_VERSION and GATEWAY_API_VERSION): regenerated
from the modules here, they match the checked-in files (`make crd-schemas` rewrites them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT

CRDS = ROOT / "tests" / "schemas" / "crds"
ROLLOUTS = "github.com/argoproj/argo-rollouts"
GATEWAY_API = "sigs.k8s.io/gateway-api"


def _pinned(name: str) -> str:
    found = re.search(rf"^{name}\s*:=\s*(\S+)", (ROOT / "mk" / "tools.mk").read_text(), re.M)
    assert found, f"{name} is not in mk/tools.mk"
    return found[1]


def _module_dir(module: str, version: str) -> Path:
    # Argo Rollouts needs a newer Go than the machine's; the toolchain module Argo CD's build uses.
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": _pinned("ARGOCD_GO_TOOLCHAIN")}
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    return Path(json.loads(done.stdout)["Dir"])


def test_argo_rollouts_and_httproute_schemas_are_the_pinned_modules(tmp_path: Path) -> None:
    crds = _module_dir(ROLLOUTS, _pinned("ARGO_ROLLOUTS_VERSION")) / "manifests" / "crds"
    gateway = _module_dir(GATEWAY_API, _pinned("GATEWAY_API_VERSION")) / "config" / "crd" / "standard"
    files = [
        str(crds / "rollout-crd.yaml"),
        str(crds / "analysis-template-crd.yaml"),
        f"{gateway / 'gateway.networking.k8s.io_httproutes.yaml'}@v1",  # the version the chart renders
    ]
    script = str(CRDS / "from_crds.py")
    subprocess.run([sys.executable, script, str(tmp_path), *files], check=True, timeout=120)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    assert [str(p) for p in written] == [
        "argoproj.io/analysistemplate_v1alpha1.json",
        "argoproj.io/rollout_v1alpha1.json",
        "gateway.networking.k8s.io/httproute_v1.json",
    ]
    for rel in written:
        assert (CRDS / rel).read_text() == (tmp_path / rel).read_text(), (
            f"{rel} is stale: run `make crd-schemas`"
        )
