"""Typed errors shared by every layer: each carries the HTTP status and the metric kind it maps to.

The codecs and the runtime raise these; only the transports (HTTP, gRPC) turn them into answers, so
the message written here is exactly what the client reads, whichever protocol it speaks, and what the
request's log line records. The limits that every transport enforces build their errors with the
functions at the end, so each limit reads the same over HTTP and gRPC.

A message names the problem by quoting what the client sent, and the client decides how much that is:
a body can name thousands of unknown fields, or one field with a name of a megabyte. So every quote
of client input goes through ``quote`` (one value, cut at ``ECHO_CHARS`` characters) or
``quote_names`` (the first ``ECHO_NAMES`` names and how many more), and ``ClientError`` cuts any
message at ``MESSAGE_CHARS`` as the last line of defence, whatever the protocol or transport.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable

# The bounds on echoed client input (docs/user-guide/protocols.md, "Error messages"). 64 characters
# hold any valid model name or version (63, bundle/metadata.py) and any feature name a person would
# write, so a message about a real mistake is never cut; 5 names say which kind of names they were.
# A message is at most MESSAGE_CHARS however many quotes it holds: a few lines of text, enough for
# the longest message the server writes about its own model (the feature list of a wide model is
# cut there too, after the part that names the problem).
ECHO_CHARS = 64
ECHO_NAMES = 5
MESSAGE_CHARS = 1024


def cut(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` whole if it has at most ``limit`` characters, else its start and its full length, in
    ``limit`` characters all told."""
    if len(text) <= limit:
        return text
    tail = f"... ({len(text)} characters)"
    return text[: max(0, limit - len(tail))] + tail


# reprlib abbreviates while it writes: a list of a million numbers, or a string of a megabyte, is
# never written out whole only to be cut afterwards.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = ECHO_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = ECHO_NAMES
_REPR.maxlevel = 3


def quote(value: object) -> str:
    """One value the client sent, for a message: its repr, abbreviated, at most ECHO_CHARS characters
    (and the length it had, when that was cut)."""
    return cut(_REPR.repr(value))


def quote_names(names: Iterable[object]) -> str:
    """Names the client sent (unknown fields, keys), for a message: the first ECHO_NAMES, each cut at
    ECHO_CHARS characters, and how many more there were."""
    shown: list[str] = []
    more = 0
    for name in names:
        if len(shown) < ECHO_NAMES:
            shown.append(cut(str(name)))
        else:
            more += 1
    return ", ".join(shown) + (f" and {more} more" if more else "")


class ClientError(Exception):
    """The request cannot be served as sent; the message names the problem (at most MESSAGE_CHARS)."""

    status = 400
    kind = "invalid_input"

    def __init__(self, message: str) -> None:
        message = cut(message, MESSAGE_CHARS)
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


def over_queue(queue_rows: int) -> Overloaded:
    return Overloaded(
        f"the prediction queue is full (BATCH_QUEUE_ROWS {queue_rows} rows, with the requests already in "
        "flight): retry shortly"
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
