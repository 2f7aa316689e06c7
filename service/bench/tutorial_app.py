"""The everyday baseline: the FastAPI tutorial way to serve a scikit-learn model.

Model loaded once at import, one pydantic model per row, a plain ``def`` endpoint (FastAPI runs it
in its thread pool), ``uvicorn.run(app)`` with its defaults (access log on). Written the way the
tutorials write it, on purpose: it is what most teams start from.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import create_model

sys.path.insert(0, str(Path(__file__).parent))
from models import load_estimator


def make_app(model_dir: Path, features: list[str]) -> FastAPI:
    model = load_estimator(model_dir / "estimator.skops")
    Row = create_model("Row", **{name: (float, ...) for name in features})  # type: ignore[call-overload]
    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(row: Row) -> dict[str, object]:  # type: ignore[valid-type]
        X = np.array([[getattr(row, name) for name in features]])
        return {"prediction": model.predict(X).tolist()[0]}

    @app.post("/predict_batch")
    def predict_batch(rows: list[Row]) -> dict[str, object]:  # type: ignore[valid-type]
        X = np.array([[getattr(row, name) for name in features] for row in rows])
        return {"predictions": model.predict(X).tolist()}

    return app


if __name__ == "__main__":
    import json
    import warnings

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    args = parser.parse_args()
    meta = json.loads((args.model_dir / "bundle" / "metadata.json").read_text())
    # The estimators were fitted on DataFrames; a tutorial passes arrays and silences the warning.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    uvicorn.run(
        make_app(args.model_dir, [f["name"] for f in meta["features"]]), host="127.0.0.1", port=args.port
    )
