"""The e2e suite's traffic client: runs inside a pod of the server image (`python -c`) and sends
predictions to a Service, then prints one line `RESULT {json}` with the counts. HTTP uses the standard
library only; the `grpc` protocol uses the image's grpcio and the server's own message classes (the
stock client a Python user has), imported only when asked for.

    python -c "$(cat podclient.py)" --base http://iris.ns.svc:8000 --model iris-classifier --requests 20

Every request is one row built from the model's Open Inference Protocol metadata (numbers for numeric
features, a string for string features), sent round-robin over the protocols asked for: `named`
(POST /predict), `v1` (POST /v1/models/NAME:predict), `v2` (POST /v2/models/NAME/infer), `grpc`
(ModelInfer of the Open Inference Protocol on --grpc-target, the Service's gRPC port). An answer
counts as ok only if it is a 200 (gRPC: OK) carrying exactly one prediction. Nothing is retried: a
refused connection, a reset, a timeout or a non-200 is a failure, counted by its kind. Stop after
--requests, after --seconds, or when --until-file appears (a test creates it with `kubectl exec` once
its rollout is done).

--connection keep-alive reuses one connection per worker as HTTP libraries' pools do (a dropped one is
counted as a failure and reopened for the next request); --connection close opens one per request
(for gRPC: one channel per worker, or one per request).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

SAMPLE = {"FP32": 1.5, "FP64": 1.5, "INT32": 2, "INT64": 2, "BOOL": True, "BYTES": "north"}
PROTOCOLS = ("named", "v1", "v2")
ALL_PROTOCOLS = (*PROTOCOLS, "grpc")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="client")
    p.add_argument("--base", required=True, help="http://HOST:PORT of the Service")
    p.add_argument("--model", required=True)
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"any of {','.join(ALL_PROTOCOLS)}")
    p.add_argument("--grpc-target", default="", help="HOST:PORT of the Service's gRPC port (protocol grpc)")
    p.add_argument("--requests", type=int, default=0, help="stop after this many (0: no limit)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: no limit)")
    p.add_argument("--until-file", default="", help="stop when this file exists")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument(
        "--rate",
        type=float,
        default=0,
        help="requests per second over all workers, paced (0: as fast as answered)",
    )
    p.add_argument("--connection", choices=("keep-alive", "close"), default="keep-alive")
    p.add_argument("--token-file", default="", help="send the first token of this file as a bearer token")
    p.add_argument("--token", default="", help="send this bearer token")
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="ask the named protocol for class probabilities too (POST /predict?probabilities=true)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--wait-ready", type=float, default=60.0, help="seconds to wait for the model metadata")
    args = p.parse_args(argv)
    if not (args.requests or args.seconds or args.until_file):
        p.error("give --requests, --seconds or --until-file")
    unknown = set(args.protocols.split(",")) - set(ALL_PROTOCOLS)
    if unknown:
        p.error(f"unknown protocols {sorted(unknown)}")
    if "grpc" in args.protocols.split(",") and not args.grpc_target:
        p.error("protocol grpc needs --grpc-target")
    return args


class Target:
    def __init__(self, args: argparse.Namespace) -> None:
        url = urllib.parse.urlsplit(args.base)
        self.host, self.port = url.hostname or "", url.port or 80
        self.timeout = args.timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = args.token
        if args.token_file:
            with open(args.token_file, encoding="utf-8") as f:
                token = next(line.strip() for line in f if line.strip() and not line.startswith("#"))
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.grpc_target = args.grpc_target
        self.grpc_metadata = [("authorization", f"Bearer {token}")] if token else []

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


def request(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw.decode(errors="replace")[:200]


def bodies(model: str, meta: dict[str, Any], probabilities: bool = False) -> dict[str, tuple[str, Any]]:
    row = {spec["name"]: SAMPLE[spec["datatype"]] for spec in meta["inputs"]}
    v2 = {
        "inputs": [
            {"name": s["name"], "datatype": s["datatype"], "shape": [1], "data": [row[s["name"]]]}
            for s in meta["inputs"]
        ]
    }
    return {
        "named": ("/predict?probabilities=true" if probabilities else "/predict", {"instances": [row]}),
        "v1": (f"/v1/models/{model}:predict", {"instances": [list(row.values())]}),
        "v2": (f"/v2/models/{model}/infer", v2),
    }


def one_prediction(protocol: str, answer: Any) -> tuple[bool, str | None]:
    """(is the answer one prediction, the model version it names if any)."""
    if not isinstance(answer, dict):
        return False, None
    if protocol == "v2":
        outputs = {o.get("name"): o for o in answer.get("outputs", [])}
        ok = "predictions" in outputs and outputs["predictions"].get("shape", [None])[0] == 1
        return ok, answer.get("model_version")
    preds = answer.get("predictions")
    return isinstance(preds, list) and len(preds) == 1, answer.get("model_version")


def grpc_request(model: str, meta: dict[str, Any]) -> Any:
    """The same row as the HTTP bodies, as a ModelInferRequest with one typed tensor per feature."""
    from model_server.protocols.proto import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=model)
    for spec in meta["inputs"]:
        value = SAMPLE[spec["datatype"]]
        tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=[1])
        field = {
            "FP32": "fp32_contents",
            "FP64": "fp64_contents",
            "INT32": "int_contents",
            "INT64": "int64_contents",
            "BOOL": "bool_contents",
            "BYTES": "bytes_contents",
        }[spec["datatype"]]
        getattr(tensor.contents, field).append(value.encode() if isinstance(value, str) else value)
    return request


class GrpcChannel:
    """One gRPC channel (one HTTP/2 connection) and its ModelInfer callable."""

    def __init__(self, target: Target) -> None:
        import grpc
        from model_server.protocols.proto import grpc_predict_v2_pb2 as pb

        self.grpc = grpc
        # No proxy: the Service is in the cluster.
        self.channel = grpc.insecure_channel(target.grpc_target, options=[("grpc.enable_http_proxy", 0)])
        self.infer = self.channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        self.metadata = target.grpc_metadata
        self.timeout = target.timeout

    def call(self, request: Any) -> tuple[str, bool, str | None, str]:
        """(outcome, one prediction?, model version, example): outcome "ok" or grpc:<CODE>."""
        try:
            answer = self.infer(request, timeout=self.timeout, metadata=self.metadata)
        except self.grpc.RpcError as e:
            code = e.code().name
            return f"grpc:{code}", False, None, f"grpc: {code} {str(e.details())[:200]}"
        shapes = {o.name: list(o.shape) for o in answer.outputs}
        return "ok", shapes.get("predictions") == [1], answer.model_version, f"grpc: outputs {shapes}"

    def close(self) -> None:
        self.channel.close()


class Counts:
    def __init__(self, protocols: list[str]) -> None:
        self.lock = threading.Lock()
        self.by_protocol = {p: Counter[str]() for p in protocols}
        self.versions: Counter[str] = Counter()
        self.examples: list[str] = []

    def add(self, protocol: str, outcome: str, version: str | None = None, example: str = "") -> None:
        with self.lock:
            self.by_protocol[protocol][outcome] += 1
            if version:
                self.versions[version] += 1
            if example and len(self.examples) < 10:
                self.examples.append(example)


def worker(
    args: argparse.Namespace,
    target: Target,
    plan: dict[str, Any],
    counts: Counts,
    budget: Counter[str],
    stop: threading.Event,
) -> None:
    protocols = list(plan)
    conn: http.client.HTTPConnection | None = None
    channel: GrpcChannel | None = None
    while not stop.is_set():
        # The protocol follows the run's request number, so every protocol gets its equal share.
        with counts.lock:
            if args.requests and budget["sent"] >= args.requests:
                stop.set()
                break
            n = budget["sent"]
            protocol = protocols[n % len(protocols)]
            budget["sent"] += 1
        # Paced: request n leaves at its slot, whichever worker sends it (a steady load for the HPA).
        if args.rate and stop.wait(max(0.0, args.started + n / args.rate - time.monotonic())):
            break
        if protocol == "grpc":
            if channel is None:
                channel = GrpcChannel(target)
            outcome, one, version, example = channel.call(plan["grpc"])
            if args.connection == "close":
                channel.close()
                channel = None
            if outcome != "ok":
                counts.add(protocol, outcome, example=example)
            elif one:
                counts.add(protocol, "ok", version)
            else:
                counts.add(protocol, "malformed", example=example)
            continue
        path, body = plan[protocol]
        if conn is None:
            conn = target.connect()
        try:
            status, answer = request(conn, "POST", path, body, target.headers)
        except (OSError, http.client.HTTPException) as e:
            counts.add(protocol, f"error:{type(e).__name__}", example=f"{protocol}: {type(e).__name__}: {e}")
            conn.close()
            conn = None
            continue
        if args.connection == "close":
            conn.close()
            conn = None
        if status != 200:
            counts.add(protocol, f"status:{status}", example=f"{protocol}: {status} {str(answer)[:200]}")
            continue
        ok, version = one_prediction(protocol, answer)
        if ok:
            counts.add(protocol, "ok", version)
        else:
            counts.add(protocol, "malformed", example=f"{protocol}: {str(answer)[:200]}")
    if conn is not None:
        conn.close()
    if channel is not None:
        channel.close()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    target = Target(args)
    deadline = time.monotonic() + args.wait_ready
    while True:
        conn = target.connect()
        try:
            status, meta = request(conn, "GET", f"/v2/models/{args.model}", None, target.headers)
            if status == 200:
                break
            reason = f"{status} {meta}"
        except (OSError, http.client.HTTPException) as e:
            reason = f"{type(e).__name__}: {e}"
        finally:
            conn.close()
        if time.monotonic() > deadline:
            print(f"model metadata not available after {args.wait_ready}s: {reason}", file=sys.stderr)
            return 2
        time.sleep(0.5)

    protocols = [p for p in args.protocols.split(",") if p]
    http_bodies = bodies(args.model, meta, args.probabilities)
    plan = {p: grpc_request(args.model, meta) if p == "grpc" else http_bodies[p] for p in protocols}
    counts = Counts(protocols)
    budget: Counter[str] = Counter()
    stop = threading.Event()
    started = args.started = time.monotonic()
    threads = [
        threading.Thread(target=worker, args=(args, target, plan, counts, budget, stop), daemon=True)
        for _ in range(args.concurrency)
    ]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if (args.seconds and time.monotonic() - started >= args.seconds) or (
            args.until_file and os.path.exists(args.until_file)
        ):
            stop.set()
        time.sleep(0.1)
    result = {
        "model": args.model,
        "connection": args.connection,
        "concurrency": args.concurrency,
        "seconds": round(time.monotonic() - started, 3),
        "protocols": {p: dict(c) for p, c in counts.by_protocol.items()},
        "sent": sum(sum(c.values()) for c in counts.by_protocol.values()),
        "ok": sum(c["ok"] for c in counts.by_protocol.values()),
        "versions": dict(counts.versions),
        "examples": counts.examples,
    }
    result["failed"] = result["sent"] - result["ok"]
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
