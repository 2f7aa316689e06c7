"""Hostile archives in a bucket, and what the pod does when a fetch fails.

The checksum proves integrity, not good intent: whoever can write to the bucket can publish the sha256
too. So the `url` source's hostile archives (tests/reliability/test_hostile_archives.py), each put in
every store with its own matching sha256, must meet the same refusals through `fetch --bucket`, and
leave nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.buckets import ALL, Target, assert_refused, run_cli, target
from support.hostile import (
    ARTIFACT,
    GiB,
    Sandbox,
    bundle_members,
    escapes,
    gzip_bomb,
    pax_bomb,
    sha256,
    tar_gz,
)
from support.serverproc import http_get, start_server, wait_failed

pytestmark = pytest.mark.slow

CASES = [
    "dot-dot",
    "dot-dot-nested",
    "absolute-path",
    "symlink-then-write",
    "symlink-relative",
    "hardlink-outside",
    "device-node",
    "directory",
    "extra-file",
    "missing-metadata",
]


@pytest.fixture(params=ALL)
def store(request: pytest.FixtureRequest) -> Target:
    return target(request.getfixturevalue(request.param))


def _fetch(t: Target, key: str, digest: str, dest: Path, *extra: str) -> object:
    return run_cli(
        "fetch", "--bucket", t.uri(key), "--sha256", digest, "--dest", str(dest), *t.options, *extra,
        env=t.env,
    )  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_archives_that_escape_or_smuggle_are_refused(
    store: Target, case: str, tmp_path: Path, iris_bundle: Path
) -> None:
    sandbox = Sandbox(tmp_path / "sandbox")
    members, phrases, absent = escapes(sandbox, iris_bundle)[case]
    body = tar_gz(members)  # type: ignore[arg-type]
    key = f"hostile-{store.provider}/{case}.tar.gz"
    store.put(key, body)
    result = _fetch(store, key, sha256(body), sandbox.dest)
    assert_refused(result, *phrases)  # type: ignore[arg-type]
    sandbox.assert_untouched(absent)


@pytest.mark.parametrize("bomb", ["gzip", "pax"])
def test_bombs_in_a_bucket_are_refused(store: Target, bomb: str, tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "sandbox")
    body = gzip_bomb(ARTIFACT, 3 * GiB) if bomb == "gzip" else pax_bomb(1 * GiB)
    key = f"hostile-{store.provider}/{bomb}-bomb.tar.gz"
    store.put(key, body)
    result = _fetch(store, key, sha256(body), sandbox.dest)
    assert_refused(result, "decompression bomb")  # type: ignore[arg-type]
    sandbox.assert_untouched()


def test_a_failed_fetch_keeps_the_pod_live_and_not_ready_with_the_reason(
    s3: object, tmp_path: Path, iris_bundle: Path
) -> None:
    """The chart's init container runs with --record-failure: it exits 0 and leaves the reason, and the
    server starts, answers /healthz, and says on /readyz why it has no model (no crash loop)."""
    t = target(s3)  # type: ignore[arg-type]
    body = tar_gz(bundle_members(iris_bundle))
    t.put("pod/bundle.tar.gz", body)
    wrong = "0" * 64
    dest = tmp_path / "models"
    result = _fetch(t, "pod/bundle.tar.gz", wrong, dest, "--record-failure")
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert "refusing to unpack" in result.stderr  # type: ignore[attr-defined]
    assert sorted(p.name for p in dest.iterdir()) == ["FETCH_FAILED"]

    with start_server(dest, wait="live") as srv:
        reason = wait_failed(f"{srv.base_url}/readyz")
        assert reason.startswith("the bundle could not be fetched: sha256 of s3://models/pod/bundle.tar.gz")
        assert f"expected {wrong}" in reason
        assert http_get(f"{srv.base_url}/healthz")[0] == 200

    # The next fetch (a new pod, the checksum fixed) clears the record and unpacks the bundle.
    result = _fetch(t, "pod/bundle.tar.gz", sha256(body), dest, "--record-failure")
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    assert sorted(p.name for p in dest.iterdir()) == ["metadata.json", "model.skops"]
