"""KServe's InferenceGRPCClient against the iris server at argv[1] and the sales server at argv[2]:
health, typed and raw FP32 inputs, BYTES for the string feature, errors."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import grpc
import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest

NO_PROXY = [("grpc.enable_http_proxy", 0)]


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


async def main(target: str, sales_target: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with InferenceGRPCClient(url=target, channel_args=NO_PROXY, retries=0) as c:
        out["live"] = await c.is_server_live()
        out["ready"] = await c.is_server_ready()
        out["model_ready"] = await c.is_model_ready("iris-classifier")
        x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
        for binary in (False, True):
            inp = InferInput(name="input", shape=list(x.shape), datatype="FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            resp = await c.infer(
                InferRequest(model_name="iris-classifier", infer_inputs=[inp], request_id="k1")
            )
            key = "raw" if binary else "typed"
            out[key] = {
                "id": resp.id,
                "outputs": {o.name: [_text(v) for v in o.as_numpy().tolist()] for o in resp.outputs},
            }
        inp = InferInput(name="input", shape=[1, 3], datatype="FP32")
        inp.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32), binary_data=False)
        try:
            await c.infer(InferRequest(model_name="iris-classifier", infer_inputs=[inp]))
            out["error"] = {"code": "OK"}
        except grpc.RpcError as e:
            out["error"] = {"code": e.code().name, "details": e.details()}
    async with InferenceGRPCClient(url=sales_target, channel_args=NO_PROXY, retries=0) as c:
        columns = {
            "region": (np.array(["north", "west"], dtype=np.object_), "BYTES"),
            "price": (np.array([12.5, 40.0]), "FP64"),
            "advertising": (np.array([800.0, 150.0]), "FP64"),
            "store_size": (np.array([3, 1], dtype=np.int64), "INT64"),
        }
        inputs = []
        for name, (values, datatype) in columns.items():
            inp = InferInput(name=name, shape=[2], datatype=datatype)
            inp.set_data_from_numpy(values, binary_data=False)
            inputs.append(inp)
        resp = await c.infer(InferRequest(model_name="sales-regressor", infer_inputs=inputs))
        out["sales"] = resp.outputs[0].as_numpy().tolist()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
