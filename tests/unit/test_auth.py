"""The bearer-token store on its own: parsing, rotation through a Kubernetes-style Secret volume,
failing closed, and comparing against every token (the end-to-end 401s are in test_auth_http.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from model_server import auth
from model_server.auth import TokenFile, Unauthorized
from support.secrets import NEW, OLD, secret_volume


def test_every_listed_token_is_accepted_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# rotation: {OLD} is retired next week\n\n{OLD}\n  {NEW}  \n")
    store = TokenFile(path)
    assert store.count == 2
    assert store.allows(f"Bearer {OLD}")
    assert store.allows(f"bearer {NEW}")  # the scheme is case-insensitive (RFC 7235)
    assert not store.allows(None)
    assert not store.allows("")
    assert not store.allows("Bearer")
    assert not store.allows("Bearer ")
    assert not store.allows(f"Basic {OLD}")
    assert not store.allows(OLD)  # no scheme
    assert not store.allows(f"Bearer {OLD[:-1]}")  # a prefix of a token
    assert not store.allows(f"Bearer {OLD}x")  # a token plus more
    assert not store.allows(f"Bearer {OLD} {NEW}")
    assert not store.allows("Bearer # rotation: old-token-0123456789abcdef is retired next week")


def test_short_or_malformed_lines_are_ignored_and_logged_without_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    path.write_text("changeme\nhas space inside-0123456789\n" + NEW + "\n")
    with caplog.at_level(logging.INFO, logger="model_server.auth"):
        store = TokenFile(path)
    assert store.count == 1
    assert not store.allows("Bearer changeme")
    assert store.allows(f"Bearer {NEW}")
    text = caplog.text
    assert "line 1" in text and "line 2" in text
    assert "changeme" not in text and "inside" not in text and NEW not in text


def test_a_rotated_secret_takes_effect_without_a_restart(tmp_path: Path) -> None:
    link = secret_volume(tmp_path, "v1", OLD + "\n")
    store = TokenFile(link)
    assert store.allows(f"Bearer {OLD}") and not store.allows(f"Bearer {NEW}")
    # Step 1 of a rotation: both tokens. Step 2: the old one removed.
    secret_volume(tmp_path, "v2", f"{OLD}\n{NEW}\n")
    assert store.allows(f"Bearer {OLD}") and store.allows(f"Bearer {NEW}")
    secret_volume(tmp_path, "v3", NEW + "\n")
    assert store.allows(f"Bearer {NEW}") and not store.allows(f"Bearer {OLD}")


def test_an_in_place_rewrite_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(OLD + "\n")
    store = TokenFile(path)
    assert store.allows(f"Bearer {OLD}")
    path.write_text(NEW + "\n" + NEW + "\n")  # different size: noticed even within one mtime tick
    assert store.allows(f"Bearer {NEW}") and not store.allows(f"Bearer {OLD}")


@pytest.mark.parametrize("content", [None, "", "# nothing yet\n", "short\n", b"\xff\xfe" + NEW.encode()])
def test_fails_closed_without_a_usable_token(
    tmp_path: Path, content: str | bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with caplog.at_level(logging.ERROR, logger="model_server.auth"):
        store = TokenFile(path)
    assert store.count == 0
    assert not store.allows(f"Bearer {NEW}")
    assert not store.allows(None)
    assert "every prediction request is refused" in caplog.text
    # Once the Secret is mounted, the same process authenticates.
    path.write_text(NEW + "\n")
    assert store.allows(f"Bearer {NEW}")
    # And removing the file (the key deleted from the Secret) shuts the door again.
    path.unlink()
    assert not store.allows(f"Bearer {NEW}")


def test_every_token_is_compared_even_after_a_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [f"token-{i:02d}-0123456789abcdef" for i in range(5)]
    path = tmp_path / "tokens"
    path.write_text("\n".join(tokens) + "\n")
    store = TokenFile(path)
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented in (f"Bearer {tokens[0]}", f"Bearer {tokens[-1]}", "Bearer wrong-token-0123456789", None):
        calls.clear()
        store.allows(presented)
        assert len(calls) == len(tokens), "a refusal or a match must not stop early"
        # Fixed-length digests: the comparison does not reveal the length of a token either.
        assert {len(a) for a, _ in calls} == {32} and {len(b) for _, b in calls} == {32}


def test_the_refusal_says_the_same_thing_whatever_was_wrong() -> None:
    err = Unauthorized()
    assert err.status == 401
    assert err.kind == "unauthorized"
    assert err.headers == {"WWW-Authenticate": 'Bearer realm="model-server"'}
    assert err.message == Unauthorized().message
    assert "Authorization: Bearer" in err.message
    for leak in ("missing", "invalid", "wrong", "expired", "unknown"):
        assert leak not in err.message
