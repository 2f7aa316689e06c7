"""`helm test`: wait until the model Service is ready, then make one real prediction over HTTP, and one
over gRPC when the chart serves it.

Runs inside the server image (`python -c`), so it uses the standard library, and for gRPC the image's
grpcio and the server's own message classes. Settings come from the environment: BASE_URL,
MODEL_NAME, MODEL_VERSION, TIMEOUT_SECONDS, and optionally PREDICT_REQUEST (the JSON body to POST to
/predict), AUTH_TOKENS_FILE (bearer tokens, one per line) and GRPC_TARGET (host:port of the Service's
gRPC port). Without PREDICT_REQUEST one row is built from the model's Open Inference Protocol metadata:
numbers 0 and strings empty, which any bundle accepts; the gRPC call always sends that row. Exit status
0 only if each answer carries one prediction from the expected model and version.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE_URL = os.environ["BASE_URL"].rstrip("/")
MODEL_NAME = os.environ["MODEL_NAME"]
MODEL_VERSION = os.environ.get("MODEL_VERSION", "")
TIMEOUT = float(os.environ.get("TIMEOUT_SECONDS", "120"))


def token():
    path = os.environ.get("AUTH_TOKENS_FILE")
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    sys.exit(f"FAIL: no token in {path}")


def call(method, path, body=None):
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    tok = token()
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    # BASE_URL is checked to be http(s) below, so urllib's file: and custom schemes cannot be reached.
    req = urllib.request.Request(BASE_URL + path, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready():
    deadline = time.monotonic() + TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = call("GET", "/readyz")
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(2)
    sys.exit(f"FAIL: {BASE_URL}/readyz not ready after {TIMEOUT:.0f}s (last: {last})")


def model_inputs():
    status, body = call("GET", f"/v2/models/{MODEL_NAME}")
    if status != 200:
        sys.exit(f"FAIL: GET /v2/models/{MODEL_NAME} answered {status}: {body[:300]!r}")
    return json.loads(body)["inputs"]


def default_request():
    row = {}
    for spec in model_inputs():
        row[spec["name"]] = "" if spec["datatype"] == "BYTES" else 0
    return {"instances": [row]}


def check_grpc(target):
    """Health SERVING, then one ModelInfer of the zero row, one tensor per feature."""
    import grpc
    from grpc_health.v1 import health_pb2
    from model_server.protocols.proto import grpc_predict_v2_pb2 as pb

    tok = token()
    metadata = [("authorization", f"Bearer {tok}")] if tok else []
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            status = check(health_pb2.HealthCheckRequest(), timeout=10).status
        except grpc.RpcError as e:
            sys.exit(f"FAIL: gRPC health check on {target}: {e.code().name} {e.details()}")
        if status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            sys.exit(f"FAIL: gRPC health on {target} is {name}")
        request = pb.ModelInferRequest(model_name=MODEL_NAME, model_version=MODEL_VERSION)
        for spec in model_inputs():
            tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=[1])
            if spec["datatype"] == "BYTES":
                tensor.contents.bytes_contents.append(b"")
            elif spec["datatype"] == "INT64":
                tensor.contents.int64_contents.append(0)
            else:
                tensor.contents.fp64_contents.append(0.0)
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        try:
            answer = infer(request, timeout=10, metadata=metadata)
        except grpc.RpcError as e:
            sys.exit(f"FAIL: gRPC ModelInfer on {target}: {e.code().name} {e.details()}")
    shapes = {o.name: list(o.shape) for o in answer.outputs}
    if answer.model_name != MODEL_NAME or (MODEL_VERSION and answer.model_version != MODEL_VERSION):
        sys.exit(f"FAIL: gRPC answered by {answer.model_name} {answer.model_version}")
    if shapes.get("predictions") != [1]:
        sys.exit(f"FAIL: gRPC expected 1 prediction, got outputs {shapes}")
    print(f"OK: {MODEL_NAME} {answer.model_version} answered over gRPC on {target}")


def main():
    if not BASE_URL.startswith(("http://", "https://")):
        sys.exit(f"FAIL: BASE_URL must be an http(s) URL, got {BASE_URL!r}")
    wait_ready()
    raw = os.environ.get("PREDICT_REQUEST")
    request = json.loads(raw) if raw else default_request()
    status, body = call("POST", "/predict", json.dumps(request).encode())
    if status != 200:
        sys.exit(f"FAIL: POST /predict answered {status}: {body[:500]!r}")
    answer = json.loads(body)
    rows = len(request["instances"]) if "instances" in request else 1
    if answer.get("model_name") != MODEL_NAME:
        sys.exit(f"FAIL: answered by model {answer.get('model_name')!r}, expected {MODEL_NAME!r}")
    if MODEL_VERSION and answer.get("model_version") != MODEL_VERSION:
        sys.exit(f"FAIL: answered by version {answer.get('model_version')!r}, expected {MODEL_VERSION!r}")
    if len(answer.get("predictions") or []) != rows:
        sys.exit(f"FAIL: expected {rows} prediction(s), got {answer!r}")
    print(f"OK: {MODEL_NAME} {answer['model_version']} predicted {answer['predictions']}")
    target = os.environ.get("GRPC_TARGET")
    if target:
        check_grpc(target)


main()
