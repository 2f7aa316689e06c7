"""Typed errors shared by every layer: each carries the HTTP status and the metric kind it maps to.

The codecs and the runtime raise these; only the HTTP layer turns them into responses, so the
message written here is exactly what the client reads.
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


class BundleError(Exception):
    """A bundle cannot be packaged or served; the message says what to fix."""
