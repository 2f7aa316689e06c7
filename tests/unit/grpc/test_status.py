"""Every typed client error has its gRPC status, and none a client causes is UNKNOWN or INTERNAL."""

from __future__ import annotations

import grpc
from model_server import auth, errors
from model_server.errors import ClientError
from model_server.grpc.status import GRPC_STATUS, grpc_status


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_client_error_maps_to_a_status_of_its_meaning() -> None:
    classes = _subclasses(ClientError) | {ClientError}
    assert {errors.InvalidInput, errors.NotReady, auth.Unauthorized} <= classes
    for cls in classes:
        assert cls.status in GRPC_STATUS, f"{cls.__name__} ({cls.status}) has no gRPC status"
    expected = {
        "InvalidInput": "INVALID_ARGUMENT",
        "Unauthorized": "UNAUTHENTICATED",
        "NotFound": "NOT_FOUND",
        "TooManyRows": "RESOURCE_EXHAUSTED",
        "PayloadTooLarge": "RESOURCE_EXHAUSTED",
        "Overloaded": "RESOURCE_EXHAUSTED",
        "NotReady": "UNAVAILABLE",
        "DeadlineExceeded": "DEADLINE_EXCEEDED",
        "ModelFailed": "INTERNAL",
    }
    by_name = {cls.__name__: cls for cls in classes}
    for name, status in expected.items():
        assert GRPC_STATUS[by_name[name].status].name == status, name
    client_caused = [cls for cls in classes if cls.kind != "model_error"]
    assert all(
        GRPC_STATUS[cls.status] not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
        for cls in client_caused
    )


def test_the_limits_read_the_same_on_both_transports() -> None:
    err = errors.over_size(100, "GRPC_MAX_MESSAGE_BYTES", 150)
    assert grpc_status(err) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.message == (
        "the message is 150 bytes, over the limit of 100 bytes (GRPC_MAX_MESSAGE_BYTES): "
        "send fewer rows per request"
    )
    assert grpc_status(errors.over_in_flight(3)) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_status(errors.over_deadline(1.5)) is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "1.5 s (REQUEST_TIMEOUT_SECONDS)" in errors.over_deadline(1.5).message
