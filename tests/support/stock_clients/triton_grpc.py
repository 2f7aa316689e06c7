"""tritonclient.grpc against the iris server at argv[1] and the sales server at argv[2]: every
call of the service, FP32, FP64, INT64 and BYTES inputs (raw binary contents, the client's only form),
requested outputs, errors."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as triton


def _error(fn: Any) -> dict[str, Any]:
    try:
        fn()
    except triton.InferenceServerException as e:
        return {"status": e.status(), "message": e.message()}
    return {"status": "OK"}


def main(target: str, sales_target: str) -> dict[str, Any]:
    c = triton.InferenceServerClient(url=target)
    out: dict[str, Any] = {
        "live": c.is_server_live(),
        "ready": c.is_server_ready(),
        "model_ready": [
            c.is_model_ready("iris-classifier"),
            c.is_model_ready("iris-classifier", "1.0.0"),
            c.is_model_ready("nope"),
        ],
    }
    meta = c.get_server_metadata()
    out["server"] = {"name": meta.name, "extensions": list(meta.extensions)}
    model = c.get_model_metadata("iris-classifier", as_json=True)
    out["model"] = {"name": model["name"], "inputs": [(i["name"], i["datatype"]) for i in model["inputs"]]}

    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    inp = triton.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    asked = [triton.InferRequestedOutput("predictions"), triton.InferRequestedOutput("probabilities")]
    result = c.infer("iris-classifier", [inp], request_id="abc", outputs=asked)
    response = result.get_response()
    out["fp32"] = {
        "id": response.id,
        "outputs": [o.name for o in response.outputs],
        "predictions": [v.decode() for v in result.as_numpy("predictions").tolist()],
        "probabilities_shape": list(result.as_numpy("probabilities").shape),
        "argmax": result.as_numpy("probabilities").argmax(axis=1).tolist(),
    }

    inp = triton.InferInput("input", [1, 4], "FP64")
    inp.set_data_from_numpy(np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float64))
    result = c.infer("iris-classifier", [inp], outputs=[triton.InferRequestedOutput("classes")])
    out["fp64_classes"] = [v.decode() for v in result.as_numpy("classes").tolist()]

    inp = triton.InferInput("input", [1, 4], "INT64")
    inp.set_data_from_numpy(np.array([[7, 3, 6, 2]], dtype=np.int64))
    out["int64"] = [v.decode() for v in c.infer("iris-classifier", [inp]).as_numpy("predictions").tolist()]

    columns = {
        "region": (np.array([b"north", b"west"], dtype=np.object_), "BYTES"),
        "price": (np.array([12.5, 40.0], dtype=np.float64), "FP64"),
        "advertising": (np.array([800.0, 150.0], dtype=np.float32), "FP32"),
        "store_size": (np.array([3, 1], dtype=np.int64), "INT64"),
    }
    inputs = []
    for name, (values, datatype) in columns.items():
        inp = triton.InferInput(name, [2], datatype)
        inp.set_data_from_numpy(values)
        inputs.append(inp)
    sales = triton.InferenceServerClient(url=sales_target)
    values = sales.infer("sales-regressor", inputs, model_version="1.0.0").as_numpy("predictions")
    sales.close()
    out["sales"] = {"dtype": str(values.dtype), "values": values.tolist()}

    bad = triton.InferInput("input", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    out["wrong_shape"] = _error(lambda: c.infer("iris-classifier", [bad]))
    out["unknown_model"] = _error(lambda: c.infer("nope", [bad]))
    out["unknown_version"] = _error(lambda: c.get_model_metadata("iris-classifier", "9"))
    c.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
