"""The gRPC ceiling: a constant ModelInferResponse from grpc.aio on uvloop, as `model-server serve`
runs its gRPC listener, with the message parsed like a real handler would. Whatever it reaches is the
most a Python grpc.aio server can answer on this core: the gRPC rows are read against it as the HTTP
rows are against ceiling_app.py. HTTP serves only /readyz, for the benchmark's readiness wait.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc
import uvicorn
from fastapi import FastAPI, Response
from model_server.protocols.proto import grpc_predict_v2_pb2 as pb

ANSWER = pb.ModelInferResponse(
    model_name="constant",
    model_version="1",
    outputs=[pb.ModelInferResponse.InferOutputTensor(name="predictions", datatype="FP64", shape=[1])],
).SerializeToString()

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/readyz")
async def ready() -> Response:
    return Response(b"{}", media_type="application/json")


async def infer(body: bytes, context: Any) -> bytes:
    pb.ModelInferRequest.FromString(body)
    return ANSWER


async def main(port: int, grpc_port: int) -> None:
    server = grpc.aio.server()
    handlers = {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("inference.GRPCInferenceService", handlers),)
    )
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    await uvicorn.Server(config).serve()
    await server.stop(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.install()
    asyncio.run(main(args.port, args.grpc_port))
