"""The image built from service/Dockerfile, run as a pod: what it carries and who it runs as.

The pod sets no user: the image's own USER must satisfy `runAsNonRoot` (a numeric, non-root UID).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from support.cluster import Image, apply, finished_pod, kubectl, python_pod

# Runs in the image: who am I, what the environment says, what the demo bundles hold, what is installed.
PROBE = """
import hashlib, importlib.util, json, os, pathlib, shutil, sys
bundles = pathlib.Path("/opt/model-server/bundles")
# What `serve` imports for the demo: every module must come with its optimized bytecode, or each start
# would compile it again (the root filesystem is read-only and PYTHONDONTWRITEBYTECODE is set).
import model_server.grpc.server, model_server.http.app, model_server.runtime.lifecycle, sklearn.ensemble
from model_server.bundle.skops_import import import_skops_io
import_skops_io()
sources = [f for m in list(sys.modules.values()) if (f := getattr(m, "__file__", None) or "").endswith(".py")]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "env": {k: os.environ.get(k) for k in ("MODEL_BUNDLE", "HOST", "PORT", "PYTHONDONTWRITEBYTECODE",
                                           "PYTHONOPTIMIZE")},
    "optimize": sys.flags.optimize,
    "modules": len(sources),
    "not_compiled": [f for f in sources if not os.path.exists(importlib.util.cache_from_source(f))][:20],
    "entrypoint": shutil.which("model-server"),
    "python": sys.version.split()[0],
    "setuptools": importlib.util.find_spec("setuptools") is not None,
    "bundles": {f"{b.name}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()
                for b in sorted(bundles.iterdir()) for f in sorted(b.iterdir())},
}))
"""


def test_image_runs_as_its_own_non_root_user_with_the_demo_bundles_of_make_demo(
    namespace: str, server_image: Image, demo_bundles: Path
) -> None:
    pod = python_pod("image-probe", server_image, PROBE, [])
    assert "runAsUser" not in pod["spec"]["containers"][0]["securityContext"]
    apply(namespace, pod)
    done = finished_pod(namespace, "image-probe", 180)
    log = kubectl("logs", "-n", namespace, "image-probe")
    assert done["status"]["phase"] == "Succeeded", log
    facts = json.loads(log.strip().splitlines()[-1])

    assert (facts["uid"], facts["gid"]) == (10001, 10001)
    assert facts["env"] == {
        "MODEL_BUNDLE": "/opt/model-server/bundles/iris-classifier",
        "HOST": "0.0.0.0",
        "PORT": "8000",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONOPTIMIZE": "2",
    }
    # The server runs without docstrings, from bytecode compiled at build time, standard library included.
    assert facts["optimize"] == 2
    assert facts["modules"] > 500, facts["modules"]
    assert facts["not_compiled"] == []
    assert facts["entrypoint"] == "/opt/venv/bin/model-server"
    assert facts["python"].startswith("3.11."), facts["python"]
    # The build backend only builds the package; it is not shipped.
    assert facts["setuptools"] is False
    # `model-server demo` in the build is reproducible: the same bytes as this checkout's `make demo`.
    local = {
        f"{b.name}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()
        for b in sorted(demo_bundles.iterdir())
        for f in sorted(b.iterdir())
    }
    assert facts["bundles"] == local
