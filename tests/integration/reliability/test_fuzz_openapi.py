"""Schemathesis against the server's own OpenAPI document, on real server processes.

Every operation the document lists, with all of schemathesis' phases (examples, coverage, fuzzing,
stateful), positive and negative data, a bounded number of examples per operation (FUZZ_EXAMPLES,
default 60) and a 10 s timeout per request. Path parameters are drawn from a dictionary that holds the
served model's real name and version most of the time, so that the generated requests get past the
404s into the decoders. Any 5xx, hang (timeout) or crash fails; every 4xx must carry a JSON
``{"error": ...}`` naming the problem (st_hooks.py). Both demo models are fuzzed: the array model and
the DataFrame model with a string feature.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT
from support.serverproc import http_get, start_server

HERE = Path(__file__).resolve().parent
EXAMPLES = os.environ.get("FUZZ_EXAMPLES_OPENAPI", "60")
SCHEMATHESIS = ROOT / ".venv" / "bin" / "schemathesis"
CONFIG = """
# No crash cache in the working tree: each run starts fresh (a failure prints its seed to replay).
[cache]
enabled = false

[checks]
enabled = false
not_a_server_error.enabled = true
error_names_the_problem.enabled = true

[dictionaries.models]
values = [{name}, "another-model"]

[dictionaries.versions]
values = [{version}, "0.0.0-missing"]

[parameters]
"path.name" = {{ dictionary = "models", probability = 0.8 }}
"path.version" = {{ dictionary = "versions", probability = 0.8 }}
"""


@pytest.mark.parametrize("model", ["iris-classifier", "sales-regressor"])
def test_openapi_fuzzing_finds_no_server_error(
    model: str, demo_bundles: Path, tmp_path: Path, record_property: Any
) -> None:
    meta = json.loads((demo_bundles / model / "metadata.json").read_text())
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(name=json.dumps(meta["name"]), version=json.dumps(meta["version"])))
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env |= {"SCHEMATHESIS_HOOKS": "st_hooks", "PYTHONPATH": str(HERE)}
    with start_server(demo_bundles / model, env={"BATCHING": "on"}) as srv:
        proc = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(config),
                "run",
                srv.url("/openapi.json"),
                "--max-examples",
                EXAMPLES,
                "--workers",
                "2",
                "--request-timeout",
                "10",
                "--no-color",
                "--generation-database",
                "none",
                "--report",
                "junit",
                "--report-junit-path",
                str(junit),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            cwd=tmp_path,
        )
        alive = srv.proc.poll() is None
        health = http_get(srv.url("/healthz"))[0] if alive else None
        ready = http_get(srv.url("/readyz"))[0] if alive else None
        server_errors = [line for line in srv.log_lines() if line.get("level") == "error"]
    out = proc.stdout
    assert proc.returncode == 0, out[-6000:] + proc.stderr[-2000:]
    assert alive and health == 200 and ready == 200, "the server did not survive the fuzzing"
    assert not server_errors, server_errors[:3]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m, out[-2000:]
    operations = re.search(r"Tested: (\d+)", out)
    figures = {
        "model": model,
        "operations": int(operations[1]) if operations else None,
        "cases": int(m[1]),
        "passed": int(m[2]),
        "seed": re.search(r"Seed: (\d+)", out)[1],
    }
    assert figures["cases"] == figures["passed"] and figures["operations"] == 14, figures
    print("schemathesis:", json.dumps(figures))
    record_property("schemathesis", figures)
