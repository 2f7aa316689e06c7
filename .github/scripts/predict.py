#!/usr/bin/env python3
"""Send real predictions to a served model and check the answers: the end-to-end job's client.

    python3 .github/scripts/predict.py http://127.0.0.1:8000 iris-classifier [--requests 20]

Builds one row from the model's Open Inference Protocol metadata (any model works: numbers for
numeric features, a string for string features), then calls the V2 infer endpoint, the named-feature
/predict endpoint and the KServe V1 endpoint, and exits non-zero on any answer that is not a
prediction. Standard library only: it runs on a bare CI runner.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any

SAMPLE = {"FP32": 1.5, "FP64": 1.5, "INT32": 2, "INT64": 2, "BOOL": True, "BYTES": "north"}


def call(url: str, body: Any = None) -> Any:
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit(f"{url}: only the port-forward on 127.0.0.1 is called")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - checked above: loopback http
        if resp.status != 200:
            raise SystemExit(f"{url}: HTTP {resp.status}")
        return json.load(resp)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("base_url")
    p.add_argument("model")
    p.add_argument("--requests", type=int, default=20)
    args = p.parse_args()
    base = args.base_url.rstrip("/")

    meta = call(f"{base}/v2/models/{args.model}")
    row = {spec["name"]: SAMPLE[spec["datatype"]] for spec in meta["inputs"]}
    infer = {
        "inputs": [
            {"name": n, "datatype": spec["datatype"], "shape": [1], "data": [row[n]]}
            for n, spec in ((s["name"], s) for s in meta["inputs"])
        ]
    }
    for _ in range(args.requests):
        v2 = call(f"{base}/v2/models/{args.model}/infer", infer)
        named = call(f"{base}/predict", {"instances": [row, row]})
        v1 = call(f"{base}/v1/models/{args.model}:predict", {"instances": [list(row.values())]})
        if not v2["outputs"] or len(named["predictions"]) != 2 or len(v1["predictions"]) != 1:
            print(f"unexpected answers: {v2} {named} {v1}", file=sys.stderr)
            return 1
    print(
        f"{args.model} {named['model_version']}: {args.requests} x 3 protocols answered, "
        f"e.g. {row} -> {named['predictions'][0]!r}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
