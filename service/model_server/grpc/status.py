"""The one mapping from the typed client errors (errors.py) to gRPC status codes, by the HTTP status
each error carries, so an error reads the same over both transports and a new error class is mapped
by what it means."""

from __future__ import annotations

import grpc

from ..errors import ClientError

# HTTP status of a ClientError -> gRPC status. 413 covers the message size and the row limit: gRPC
# itself answers RESOURCE_EXHAUSTED for an oversized message. 500 is the model failing on valid input
# (model_error), never something a client sent.
GRPC_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
# The request metrics' `code` of answers that are not a ClientError: the client cancelled the call (as
# nginx logs it), or its own deadline passed while the server worked on it.
CANCELLED = 499
CLIENT_DEADLINE = 504


def grpc_status(err: ClientError) -> grpc.StatusCode:
    return GRPC_STATUS.get(err.status, grpc.StatusCode.INVALID_ARGUMENT)
