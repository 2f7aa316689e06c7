"""Schemathesis hooks for tests/integration/reliability/test_fuzz_openapi.py (loaded via SCHEMATHESIS_HOOKS).

One extra check on top of schemathesis' own ``not_a_server_error``: every refusal is the server's
JSON error shape with a message that names the problem (no stack trace, no empty body).
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def error_names_the_problem(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400:
        return
    try:
        doc = response.json()
    except ValueError:
        raise AssertionError(
            f"a {response.status_code} answer must be JSON, got {response.text[:200]!r}"
        ) from None
    message = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(message, str) or len(message) < 10:
        raise AssertionError(f'a {response.status_code} answer must name the problem in "error", got {doc!r}')
    if "Traceback" in message or 'File "' in message:
        raise AssertionError(f"a {response.status_code} answer leaks a stack trace: {message[:200]!r}")
