"""Hostile and lying model bundles: each must be refused with a message that names the problem, the
process serving it must stay live and never ready, and no payload may run.

The code-execution artifacts are real: ``test_the_payloads_are_live`` loads each with a trusting
skops loader and watches its marker file appear; the server must refuse the same bytes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from model_server.bundle import artifact, artifact_limits
from model_server.bundle.artifact_limits import DEFAULT_MAX_UNPACKED_BYTES, check_unpacked_size
from model_server.bundle.load import load_bundle
from model_server.errors import BundleError
from model_server.settings import Settings
from support.hostile import (
    ARTIFACT,
    GiB,
    MiB,
    add_zero_member,
    call_node,
    copy_bundle,
    declare_size,
    edit_metadata,
    function_node,
    inject_attribute,
    object_node,
    set_artifact,
)
from support.paths import ROOT
from support.serverproc import http_get, post_json, start_server, wait_failed


@dataclass
class Case:
    base: str  # iris | sales
    build: Callable[[Path, Path], None]  # (bundle dir, marker path)
    phrases: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    payload: bool = False  # the artifact runs code when loaded by a trusting loader


def _inject(node_for: Callable[[Path], dict[str, Any]]) -> Callable[[Path, Path], None]:
    def build(bundle: Path, marker: Path) -> None:
        set_artifact(bundle, inject_attribute((bundle / ARTIFACT).read_bytes(), "_payload", node_for(marker)))

    return build


def _os_system(marker: Path) -> dict[str, Any]:
    return call_node("os", "system", f"touch {marker}")


def _self_whitelisted(bundle: Path, marker: Path) -> None:
    _inject(_os_system)(bundle, marker)
    edit_metadata(bundle, lambda m: m.__setitem__("untrusted_types", [*m["untrusted_types"], "os.system"]))


def _tampered(bundle: Path, marker: Path) -> None:
    data = bytearray((bundle / ARTIFACT).read_bytes())
    data[len(data) // 2] ^= 0xFF
    set_artifact(bundle, bytes(data), fix_checksum=False)


def _truncated(bundle: Path, marker: Path) -> None:
    data = (bundle / ARTIFACT).read_bytes()
    set_artifact(bundle, data[: len(data) // 2])


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _pickle(bundle: Path, marker: Path) -> None:
    # What `joblib.dump` or `pickle.dump` of a booby-trapped model writes; only ever written here.
    set_artifact(bundle, pickle.dumps(_Evil(marker)))


def _zip_bomb(bundle: Path, marker: Path) -> None:
    # A valid skops file plus 256 MiB of zeros deflated to 0.25 MiB (served under a 128 MiB cap: a bomb
    # past the default 4 GiB would take seconds to build). The same bytes as an array's .npy would be
    # inflated whole by skops.
    set_artifact(bundle, add_zero_member((bundle / ARTIFACT).read_bytes(), "padding.bin", 256 * MiB))


def _declare(size: int, members: int = 1) -> Callable[[Path, Path], None]:
    """The first ``members`` members of the zip (schema.json first) declare ``size`` bytes each."""

    def build(bundle: Path, marker: Path) -> None:
        data = (bundle / ARTIFACT).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = sorted(z.namelist(), key=lambda n: n != "schema.json")
        for name in names[:members]:
            data = declare_size(data, name, size)
        set_artifact(bundle, data)

    return build


def _meta(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path, Path], None]:
    return lambda bundle, marker: edit_metadata(bundle, edit) and None


def _feature(feature: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(m: dict[str, Any]) -> None:
        for f in m["features"]:
            if f["name"] == feature:
                f.update(changes)
                if changes.get("dtype", "string") != "string":
                    f.pop("categories", None)

    return edit


def _swap(m: dict[str, Any]) -> None:
    m["features"][1], m["features"][2] = m["features"][2], m["features"][1]


CASES: dict[str, Case] = {
    # untrusted types: refused by the trust list, which comes from the server's settings only
    "custom-class": Case(
        "iris",
        _inject(lambda _: object_node("acme_models.transformers", "Scaler")),
        ("acme_models.transformers.Scaler", "not trusted", "TRUSTED_TYPES"),
    ),
    "os-system-call": Case("iris", _inject(_os_system), ("os.system", "not trusted"), payload=True),
    "exec-call": Case(
        "iris",
        _inject(lambda m: call_node("builtins", "exec", f"open({str(m)!r}, 'w').close()")),
        ("builtins.exec", "not trusted"),
        payload=True,
    ),
    "subprocess-call": Case(
        "iris",
        _inject(lambda m: call_node("subprocess", "getoutput", f"touch {m}")),
        ("subprocess.getoutput", "not trusted"),
        payload=True,
    ),
    "eval-reference": Case(
        "iris", _inject(lambda _: function_node("builtins", "eval")), ("builtins.eval", "not trusted")
    ),
    "self-whitelisted": Case("iris", _self_whitelisted, ("os.system", "not trusted"), payload=True),
    "unrelated-extra-trust": Case(
        "iris",
        _inject(_os_system),
        ("os.system", "not trusted"),
        env={"TRUSTED_TYPES": "collections.Counter,sklearn.svm._classes.SVC"},
        payload=True,
    ),
    # damaged or foreign artifacts
    "tampered": Case("iris", _tampered, ("checksum mismatch", "changed or truncated")),
    "truncated-artifact": Case("iris", _truncated, ("not a readable skops file",)),
    "pickle-artifact": Case("iris", _pickle, ("not a readable skops file",)),
    # decompression bombs: refused from the zip's central directory, before skops inflates anything
    "zip-bomb": Case(
        "iris",
        _zip_bomb,
        ("more than MAX_ARTIFACT_UNPACKED_BYTES (134217728)", "'padding.bin' declares 268435456 bytes"),
        env={"MAX_ARTIFACT_UNPACKED_BYTES": str(128 * MiB)},
    ),
    "forged-total": Case(  # the default cap: 6 GiB declared by a 160 KB file
        "iris",
        _declare(3 * GiB, members=2),
        ("more than MAX_ARTIFACT_UNPACKED_BYTES (4294967296)", "raise MAX_ARTIFACT_UNPACKED_BYTES"),
    ),
    "forged-size": Case(
        "iris",
        _declare(3 * GiB),
        ("'schema.json' declares 3221225472 bytes from", "at most 1032 to 1", "sizes are forged"),
    ),
    # a size declared below the real one cannot make zipfile inflate more: it stops there, CRC fails
    "understated-size": Case(
        "iris",
        _declare(1000),
        ("not a readable skops file", "Bad CRC-32 for file 'schema.json'"),
    ),
    "sklearn-version": Case(
        "iris",
        _meta(lambda m: m["versions"].__setitem__("sklearn", "1.2.2")),
        ("scikit-learn 1.2.2", "ALLOW_SKLEARN_VERSION_MISMATCH"),
    ),
    "metadata-not-json": Case(
        "iris", lambda b, _: (b / "metadata.json").write_text("{not json"), ("cannot be read as JSON",)
    ),
    # metadata that lies about the model
    "feature-count": Case(
        "iris", _meta(lambda m: m["features"].pop()), ("lists 3 features, the model takes 4",)
    ),
    "feature-names": Case(
        "sales",
        _meta(_feature("price", name="cost")),
        ("'cost'", "fitted on ['region', 'price', 'advertising', 'store_size']"),
    ),
    "feature-order": Case("sales", _meta(_swap), ("names and order must match",)),
    "feature-dtype": Case(
        "sales",
        _meta(_feature("price", dtype="string")),
        ("feature 'price' is string but its training data was numeric",),
    ),
    "category-as-number": Case(
        "sales",
        _meta(_feature("region", dtype="float")),
        ("feature 'region' is float but its training data was categorical",),
    ),
    "string-on-array-model": Case(
        "iris",
        _meta(_feature("sepal_length", dtype="string")),
        ("'sepal_length' is a string, but the model was fitted on a numeric array",),
    ),
    "input-kind": Case(
        "iris",
        _meta(lambda m: m.__setitem__("input_kind", "dataframe")),
        ("input_kind dataframe", "fitted on an array"),
    ),
    "classes": Case(
        "iris", _meta(lambda m: m.__setitem__("classes", ["cat", "dog", "bird"])), ("classes differ",)
    ),
    "task": Case(
        "iris",
        _meta(lambda m: m.__setitem__("task", "regressor")),
        ("says task regressor", "RandomForestClassifier"),
    ),
}
# Served by real processes (the rest are checked in-process: same load_bundle, no startup cost).
IN_PROCESSES = ("os-system-call", "pickle-artifact", "tampered", "feature-order", "zip-bomb")


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, iris_bundle: Path, sales_bundle: Path
) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("hostile-bundles")
    out: dict[str, tuple[Path, Path]] = {}
    for name, case in CASES.items():
        bundle = copy_bundle(iris_bundle if case.base == "iris" else sales_bundle, root / name)
        marker = root / f"{name}.PWNED"
        case.build(bundle, marker)
        out[name] = (bundle, marker)
    return out


def test_the_payloads_are_live(built: dict[str, tuple[Path, Path]]) -> None:
    """The control: a loader that trusts everything runs each payload (so refusing them matters)."""
    for name, case in CASES.items():
        if not case.payload:
            continue
        bundle, marker = built[name]
        data = (bundle / ARTIFACT).read_bytes()
        assert not marker.exists()
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        assert marker.exists(), f"{name}: the payload did not run even when trusted"
        marker.unlink()
    with pytest.raises(Exception):
        sio.loads((built["pickle-artifact"][0] / ARTIFACT).read_bytes(), trusted=True)
    assert not built["pickle-artifact"][1].exists()


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_bundle_is_refused_with_the_reason(
    name: str, built: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No memory limit to read (an empty cgroup tree): the host's own limit must not change the 4 GiB
    # default cap the cases name (test_artifact_cap.py covers the derived cap).
    monkeypatch.setattr(artifact_limits, "CGROUP_ROOT", tmp_path)
    case = CASES[name]
    bundle, marker = built[name]
    settings = Settings.from_env(case.env)
    with pytest.raises(BundleError) as err:
        load_bundle(bundle, settings)
    for phrase in case.phrases:
        assert phrase in str(err.value), str(err.value)
    assert not marker.exists(), "the payload ran"


def test_served_hostile_bundles_stay_live_and_never_ready(built: dict[str, tuple[Path, Path]]) -> None:
    servers = {name: start_server(built[name][0], env=CASES[name].env, wait=None) for name in IN_PROCESSES}
    try:
        for name, srv in servers.items():
            srv.wait_live()
            reason = wait_failed(srv.url("/readyz"))
            for phrase in CASES[name].phrases:
                assert phrase in reason, f"{name}: {reason}"
        for name, srv in servers.items():
            # Still up, still saying why, and every endpoint answers without serving the model.
            assert srv.proc.poll() is None, f"{name}: the process exited"
            assert http_get(srv.url("/healthz"))[0] == 200
            status, body = http_get(srv.url("/readyz"))
            assert status == 503 and json.loads(body)["status"] == "failed"
            assert b"model_server_model_ready 0.0" in http_get(srv.url("/metrics"))[1]
            status, body = post_json(
                srv.url("/predict"),
                {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
            )
            assert status == 503 and "not ready" in json.loads(body)["error"], body
            assert any(
                line.get("level") == "error" and CASES[name].phrases[0] in str(line.get("msg"))
                for line in srv.log_lines()
            ), f"{name}: the log does not say what to fix"
            assert not built[name][1].exists(), f"{name}: the payload ran"
    finally:
        codes = {name: srv.stop() for name, srv in servers.items()}
    assert codes == dict.fromkeys(servers, 0)


def test_validate_refuses_a_code_executing_bundle(built: dict[str, tuple[Path, Path]]) -> None:
    bundle, marker = built["subprocess-call"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    result = subprocess.run(
        [str(ROOT / ".venv/bin/model-server"), "validate", str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert "subprocess.getoutput" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not marker.exists()


def test_honest_artifacts_at_deflates_limit_are_not_called_forged() -> None:
    """A model whose arrays are mostly zeros (an L1-penalised linear model on 2**20 hashed features
    unpacks to ~900 times its size) packs about as tightly as deflate can: it must still load."""
    data = artifact.dumps({"coef": np.zeros((10, 2**20)), "intercept": np.ones(10)})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        tightest = max(m.file_size / m.compress_size for m in z.infolist())
    assert tightest > 1000  # right at deflate's limit (1032)
    check_unpacked_size(data, DEFAULT_MAX_UNPACKED_BYTES)  # does not raise


@pytest.mark.parametrize("name", ["zip-bomb", "forged-size"])
def test_validate_refuses_an_artifact_that_would_unpack_too_far(
    name: str, built: dict[str, tuple[Path, Path]]
) -> None:
    case = CASES[name]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")} | case.env
    result = subprocess.run(
        [str(ROOT / ".venv/bin/model-server"), "validate", str(built[name][0])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    for phrase in case.phrases:
        assert phrase in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
