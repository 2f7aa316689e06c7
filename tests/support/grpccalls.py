"""Calls to a real server's gRPC port with grpcio and the server's own message classes.

Stock clients (tritonclient.grpc, KServe's, grpcurl) run in processes of their own (support.grpcclients):
tritonclient registers its proto under the same `inference` package, and protobuf refuses a second
definition of those names in one process.

    with grpc_channel(srv) as channel:
        code, details, reply = call(channel, "ModelInfer", infer_request(...).SerializeToString())
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from model_server.protocols.proto import grpc_predict_v2_pb2 as pb

from .serverproc import ServerProcess

SERVICE = "inference.GRPCInferenceService"
STOCK_CLIENTS = Path(__file__).resolve().parent / "stock_clients"


def run_stock_client(script: str, *targets: str, python: str | Path = sys.executable) -> dict[str, Any]:
    """Run stock_clients/<script>.py against ``targets`` (host:port of the iris server, then of the
    sales server) in its own process; what it saw."""
    done = subprocess.run(
        [str(python), str(STOCK_CLIENTS / f"{script}.py"), *targets],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*", "no_proxy": "*"},
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextmanager
def grpc_channel(srv: ServerProcess, options: Sequence[tuple[str, object]] = ()) -> Iterator[grpc.Channel]:
    # No proxy for loopback, whatever the environment says.
    with grpc.insecure_channel(srv.grpc_target, options=[("grpc.enable_http_proxy", 0), *options]) as ch:
        yield ch


def call(
    channel: grpc.Channel,
    method: str,
    body: bytes,
    timeout: float | None = 10.0,
    metadata: Sequence[tuple[str, str]] = (),
    service: str = SERVICE,
) -> tuple[grpc.StatusCode, str, bytes]:
    """(status, details, reply bytes) of one unary call with raw bytes, without raising."""
    stub = channel.unary_unary(f"/{service}/{method}")
    try:
        reply, rpc = stub.with_call(body, timeout=timeout, metadata=tuple(metadata))
        return rpc.code(), rpc.details() or "", reply
    except grpc.RpcError as e:
        return e.code(), e.details() or "", b""


def infer_request(model: str, rows: np.ndarray, raw: bool = False, **fields: object) -> pb.ModelInferRequest:
    """One 2-D FP64 tensor named `input` (typed contents, or raw contents)."""
    arr = np.asarray(rows, dtype="<f8")
    msg = pb.ModelInferRequest(model_name=model, **fields)
    tensor = msg.inputs.add(name="input", datatype="FP64", shape=list(arr.shape))
    if raw:
        msg.raw_input_contents.append(arr.tobytes())
    else:
        tensor.contents.fp64_contents.extend(arr.ravel().tolist())
    return msg


def infer(
    channel: grpc.Channel, msg: pb.ModelInferRequest, **kw: object
) -> tuple[grpc.StatusCode, str, pb.ModelInferResponse | None]:
    code, details, reply = call(channel, "ModelInfer", msg.SerializeToString(), **kw)  # type: ignore[arg-type]
    return code, details, pb.ModelInferResponse.FromString(reply) if code == grpc.StatusCode.OK else None
