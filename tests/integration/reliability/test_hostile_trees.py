"""A bundle whose forest has a crafted child index: the server must refuse it at load, stay live and not
ready and say why, and `model-server validate` must fail naming it.

The artifact is what an attacker who controls the bundle can write: the demo forest with one tree's
root pointing its left child at node 2**50, saved by skops with the matching checksum in metadata.json.
Every type in it is on the default trust list, so only the structure check (model_server/bundle/structure.py)
stands between it and the first prediction. ``test_the_crafted_forest_crashes_without_the_check`` is
the control: loaded the same way but without the check, predicting one row kills the process with
SIGSEGV (deterministic: the child's address is not a canonical x86-64 address, whatever the heap).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import skops.io as sio
from model_server.bundle import artifact
from support.hostile import ARTIFACT, copy_bundle, set_artifact
from support.paths import ROOT
from support.serverproc import http_get, post_json, start_server, wait_failed

BAD_CHILD = 2**50
REASON = f"model.skops failed the structure check: estimators_[0].tree_: node 0 has left child {BAD_CHILD}"
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory, iris_bundle: Path) -> Path:
    bundle = copy_bundle(iris_bundle, tmp_path_factory.mktemp("hostile-trees") / "iris-classifier")
    data = (bundle / ARTIFACT).read_bytes()
    forest = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    tree = forest.estimators_[0].tree_
    cls, args, state = tree.__reduce__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = BAD_CHILD
    crafted_tree = cls(*args)
    crafted_tree.__setstate__(dict(state, nodes=nodes))
    forest.estimators_[0].tree_ = crafted_tree
    set_artifact(bundle, artifact.dumps(forest))  # and metadata.json gets the matching sha256
    return bundle


def test_the_crafted_forest_crashes_without_the_check(crafted: Path) -> None:
    """The control, in a child process: skops loads it (every type is trusted) and predict segfaults."""
    script = (
        "import sys, skops.io as sio\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "forest = sio.loads(data, trusted=sio.get_untrusted_types(data=data))\n"
        "print('loaded', flush=True)\n"
        "forest.predict([[5.1, 3.5, 1.4, 0.2]])\n"
        "print('predicted', flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(crafted / ARTIFACT)], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.splitlines() == ["loaded"], result
    assert result.returncode == -signal.SIGSEGV, result


def test_served_crafted_forest_stays_live_not_ready_and_says_why(crafted: Path) -> None:
    with start_server(crafted, wait="live") as srv:
        reason = wait_failed(srv.url("/readyz"))
        assert REASON in reason, reason
        assert srv.proc.poll() is None, "the process exited"
        assert http_get(srv.url("/healthz"))[0] == 200
        status, body = http_get(srv.url("/readyz"))
        assert status == 503 and json.loads(body)["status"] == "failed"
        status, body = post_json(srv.url("/predict"), ROW)
        assert status == 503 and "not ready" in json.loads(body)["error"], body
        assert srv.proc.poll() is None, "the process exited"
        assert any(
            line.get("level") == "error" and REASON in str(line.get("msg")) for line in srv.log_lines()
        ), srv.log()
    assert srv.exit_code == 0, srv.log()


def test_validate_fails_naming_the_structure_problem(crafted: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    result = subprocess.run(
        [str(ROOT / ".venv/bin/model-server"), "validate", str(crafted)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0, result
    assert REASON in result.stderr and "Traceback" not in result.stderr, result.stderr
