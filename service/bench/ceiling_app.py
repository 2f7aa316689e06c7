"""The ceiling: a constant-answer endpoint on the server's own stack (FastAPI, uvicorn, orjson).

It reads the request body like a real endpoint and answers the same constant bytes every time, so
whatever it reaches is the most any model server on this stack and this core can do: the
benchmark reports every contender as a fraction of it. Same uvicorn settings as `model-server
serve` (uvloop, httptools, no access log).
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

ANSWER = orjson.dumps(
    {
        "model_name": "constant",
        "model_version": "1",
        "outputs": [{"name": "predict", "shape": [1], "datatype": "FP64", "data": [0.0]}],
    }
)

# The same FastAPI settings as model-server's app (http/app.py): OpenTelemetry hook off.
app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/readyz")
async def ready() -> Response:
    return Response(b"ok")


@app.post("/{path:path}")
async def constant(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )
