"""A training job for the model-source tests, run in a pod of the server image (`python -c`): fits a
small churn classifier (the model of examples/pvc-values.yaml and examples/bucket-values.yaml: features
tenure_months, monthly_charges, contract) on seeded synthetic data and writes its bundle, as a team's
training pipeline would, to a volume or, with --push, to a bucket through `model-server push`.

    python -c "$(cat churn.py)" --version 2.3.0 --out /data/churn-classifier/2.3.0
    python -c "$(cat churn.py)" --version 2.3.0 --out /tmp/churn --push s3://ml-models/churn/ --endpoint URL

Push credentials come from the pod's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), as for the
cloud's own CLI. The output of `model-server push` (its `sha256 ...` line) is printed unchanged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

NAME = "churn-classifier"


def build() -> tuple[object, object]:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, n),
            "monthly_charges": rng.uniform(20, 120, n).round(2),
            "contract": rng.choice(["month-to-month", "one-year", "two-year"], n),
        }
    )
    risk = (X["contract"] == "month-to-month") * 1.5 + X["monthly_charges"] / 60 - X["tenure_months"] / 24
    y = (risk + rng.normal(0, 0.5, n) > 1).map({True: "churn", False: "stay"})
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("contract", OneHotEncoder(handle_unknown="ignore"), ["contract"]),
                        ("numeric", StandardScaler(), ["tenure_months", "monthly_charges"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y)
    return model, X


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="churn")
    p.add_argument("--version", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--push", metavar="URI", help="also push the bundle there (model-server push)")
    p.add_argument("--endpoint", help="the store's base URL, for --push")
    p.add_argument("--region", default="us-east-1")
    args = p.parse_args(argv)

    from model_server.bundle.package import package

    model, X = build()
    bundle = package(model, X, name=NAME, version=args.version, out=args.out)
    print(f"BUNDLE {bundle}", flush=True)
    if args.push:
        cmd = ["model-server", "push", str(bundle), args.push, "--region", args.region]
        if args.endpoint:
            cmd += ["--endpoint", args.endpoint]
        done = subprocess.run(cmd, capture_output=True, text=True)
        print(done.stdout, done.stderr, sep="\n", flush=True)
        return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
