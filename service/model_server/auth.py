"""Optional bearer-token authentication for the prediction endpoints (AUTH_TOKENS_FILE).

The tokens file holds one token per line (blank lines and ``#`` comments are ignored); several
tokens let a client move to a new one before the old one is removed (rotation). Kubernetes updates
a mounted Secret in place (it swaps a symlink to a new directory), so the file is checked on every
request with one ``stat`` and re-read when its identity, size or mtime changes: a rotated Secret
takes effect without a restart.

Checks are constant-time: the presented token and every configured token are hashed to 32 bytes,
and the hash is compared with ``hmac.compare_digest`` against every configured token, without
stopping at the first match, so neither timing nor length says how close a guess was. Every
refusal gets the same 401 body and ``WWW-Authenticate`` challenge, whether the header was missing,
used another scheme, or held a wrong token.

Fail closed: when the file is missing, unreadable or lists no usable token, no request is
authenticated (and the log says why), rather than silently serving without authentication.

Pure Python (no web framework): the HTTP layer asks ``TokenFile.allows(header)`` and turns a
refusal into ``Unauthorized``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path

from .errors import ClientError

log = logging.getLogger("model_server.auth")

# A token shorter than this is guessable or a placeholder ("changeme"): it is ignored, with a log
# line naming its line number (never the token). 16 characters of base64 are 96 bits.
MIN_TOKEN_LENGTH = 16
# RFC 6750 b64token: what may follow "Bearer " in an Authorization header.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
CHALLENGE = 'Bearer realm="model-server"'
MESSAGE = "authentication required: send a valid token in the header 'Authorization: Bearer <token>'"


class Unauthorized(ClientError):
    """401 with the same body for every reason; ``headers`` carries the challenge."""

    status = 401
    kind = "unauthorized"
    headers = {"WWW-Authenticate": CHALLENGE}

    def __init__(self) -> None:
        super().__init__(MESSAGE)


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_tokens(text: str, source: str = "tokens file") -> list[str]:
    """The usable tokens of a tokens file; unusable lines are logged by number and skipped."""
    tokens: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _TOKEN_RE.match(line):
            log.error(
                "ignoring line %d of %s: a token may hold only letters, digits and -._~+/=", number, source
            )
        elif len(line) < MIN_TOKEN_LENGTH:
            log.error(
                "ignoring line %d of %s: a token must be at least %d characters",
                number,
                source,
                MIN_TOKEN_LENGTH,
            )
        else:
            tokens.append(line)
    return tokens


def bearer_token(authorization: str | None) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` header, or b"" (never matches)."""
    if not authorization:
        return b""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return b""
    return token.strip().encode("utf-8", "replace")


class TokenFile:
    """The tokens of AUTH_TOKENS_FILE, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[int, ...] | None = None
        self._digests: tuple[bytes, ...] = ()
        self._refresh()

    @property
    def count(self) -> int:
        self._refresh()
        return len(self._digests)

    def allows(self, authorization: str | None) -> bool:
        """True when the header carries one of the configured tokens (constant time over all of them)."""
        self._refresh()
        presented = _digest(bearer_token(authorization))
        match = False
        for digest in self._digests:
            # No short-circuit: the time taken does not depend on which token (if any) matched.
            match |= hmac.compare_digest(presented, digest)
        return match

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)  # follows the Secret volume's symlinks to the current file
            key: tuple[int, ...] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError as e:
            key = (-1, e.errno or 0)
        if key == self._key:
            return
        self._key = key
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            self._digests = ()
            log.error(
                "AUTH_TOKENS_FILE %s cannot be read (%s): every prediction request is refused until it can",
                self.path,
                type(e).__name__,
            )
            return
        tokens = parse_tokens(text, str(self.path))
        self._digests = tuple(_digest(t.encode()) for t in tokens)
        if tokens:
            log.info("auth tokens loaded", extra={"tokens": len(tokens), "path": str(self.path)})
        else:
            log.error(
                "AUTH_TOKENS_FILE %s lists no usable token: every prediction request is refused", self.path
            )
