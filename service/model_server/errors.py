"""Typed errors shared by every layer: each carries the HTTP status and the metric kind it maps to.

The codecs and the runtime raise these; only the transports (HTTP, gRPC) turn them into answers, so
the message written here is exactly what the client reads, whichever protocol it speaks. The limits
that every transport enforces build their errors with the functions at the end, so each limit reads
the same over HTTP and gRPC.
"""

from __future__ import annotations


class ClientError(Exception):
    """The request cannot be served as sent; the message names the problem."""

    status = 400
    kind = "invalid_input"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ClientError):
    """Missing, extra or mistyped feature, bad tensor, NaN where the model cannot take it."""


class TooManyRows(ClientError):
    status = 413
    kind = "too_many_rows"


class PayloadTooLarge(ClientError):
    status = 413
    kind = "payload_too_large"


class UnsupportedMediaType(ClientError):
    status = 415
    kind = "unsupported_media_type"


class NotFound(ClientError):
    status = 404
    kind = "not_found"


class Overloaded(ClientError):
    status = 429
    kind = "overloaded"


class DeadlineExceeded(ClientError):
    status = 504
    kind = "deadline_exceeded"


class NotReady(ClientError):
    status = 503
    kind = "not_ready"


class ModelFailed(ClientError):
    """The model itself raised on input that passed validation: a bundle bug, not the client's."""

    status = 500
    kind = "model_error"


def over_in_flight(limit: int) -> Overloaded:
    return Overloaded(
        f"the server is at its limit of {limit} concurrent prediction requests (MAX_IN_FLIGHT): retry shortly"
    )


def over_deadline(seconds: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the request took longer than {seconds:g} s (REQUEST_TIMEOUT_SECONDS) and was abandoned: the "
        "server is overloaded or the batch is too large"
    )


def over_size(limit: int, setting: str, size: int | None = None) -> PayloadTooLarge:
    """A body or message over ``limit`` bytes (``size``: its length, when known before reading it)."""
    what = "the body" if setting == "MAX_BODY_BYTES" else "the message"
    if size is None:
        return PayloadTooLarge(
            f"{what} is over the limit of {limit} bytes ({setting}): send fewer rows per request"
        )
    return PayloadTooLarge(
        f"{what} is {size} bytes, over the limit of {limit} bytes ({setting}): send fewer rows per request"
    )


class BundleError(Exception):
    """A bundle cannot be packaged or served; the message says what to fix."""
