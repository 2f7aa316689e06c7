"""`model-server push` and `model-server fetch --bucket` against SeaweedFS (S3), Azurite and fake-gcs-server.

What a platform engineer relies on: a pushed bundle comes back byte for byte with the sha256 push
printed; every failure a user meets is one line naming the object, the store and the identity; a
broken or stalled stream is resumed; nothing is unpacked unless the checksum matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support import emulators
from support.buckets import ALL, CliResult, Target, assert_refused, run_cli, target
from support.faultproxy import FaultProxy
from support.hostile import ARTIFACT, METADATA, bundle_members, member, sha256, tar_gz
from support.serverproc import free_port

pytestmark = pytest.mark.slow

# fake-gcs-server accepts uploads through the JSON API only, obstore writes through the XML API: push to
# GCS is exercised against real GCS only (docs/user-guide/model-sources.md).
WRITABLE = ["s3", "azure"]


@pytest.fixture(params=ALL)
def store(request: pytest.FixtureRequest) -> Target:
    return target(request.getfixturevalue(request.param))


@pytest.fixture(params=WRITABLE)
def writable(request: pytest.FixtureRequest) -> Target:
    return target(request.getfixturevalue(request.param))


def _key(request: pytest.FixtureRequest, name: str = "bundle.tar.gz") -> str:
    """A key of this test's own, so tests sharing a server never see each other's objects."""
    return f"{request.node.name.replace('[', '-').rstrip(']')}/{name}"


def fetch(
    t: Target, uri: str, digest: str, dest: Path, *extra: str, env: dict[str, str] | None = None
) -> CliResult:
    return run_cli(
        "fetch", "--bucket", uri, "--sha256", digest, "--dest", str(dest), *t.options, *extra,
        env={**t.env, **(env or {})},
    )  # fmt: skip


def assert_nothing_unpacked(dest: Path) -> None:
    assert not dest.exists() or list(dest.iterdir()) == [], f"left in {dest}: {list(dest.iterdir())}"


# ---- round trips ----------------------------------------------------------------------------------


def test_push_then_fetch_returns_the_bundle_byte_for_byte(
    writable: Target, iris_bundle: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    folder = writable.uri(_key(request, ""))
    pushed = run_cli("push", str(iris_bundle), folder, *writable.options, env=writable.env)
    assert pushed.code == 0, pushed.stderr
    # The same bytes `model-server archive` writes, so the sha256 is reproducible from the bundle alone.
    local = run_cli("archive", str(iris_bundle), str(tmp_path / "local.tar.gz"))
    assert local.code == 0, local.stderr
    digest = sha256((tmp_path / "local.tar.gz").read_bytes())
    assert f"sha256 {digest}" in pushed.stdout.splitlines()
    uri = f"{folder}iris-classifier-1.0.0.tar.gz"
    assert writable.get(uri.split("/", 3)[3]) == (tmp_path / "local.tar.gz").read_bytes()

    # The values snippet parses and says exactly what the chart needs.
    snippet = yaml.safe_load(pushed.stdout.split("chart values:\n", 1)[1])
    bucket = snippet["model"]["source"]["bucket"]
    assert snippet["model"]["name"] == "iris-classifier" and snippet["model"]["version"] == "1.0.0"
    assert snippet["model"]["source"]["type"] == "bucket"
    assert (bucket["uri"], bucket["sha256"], bucket["endpoint"]) == (uri, digest, writable.emu.endpoint)

    result = fetch(writable, bucket["uri"], bucket["sha256"], tmp_path / "models")
    assert result.code == 0, result.stderr
    assert {p.name for p in (tmp_path / "models").iterdir()} == {ARTIFACT, METADATA}
    for name in (ARTIFACT, METADATA):
        assert (tmp_path / "models" / name).read_bytes() == (iris_bundle / name).read_bytes()


def test_fetch_from_gcs_returns_the_bundle_byte_for_byte(
    gcs: emulators.Emulator, iris_bundle: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    t = target(gcs)
    body = tar_gz(bundle_members(iris_bundle))
    t.put(_key(request), body)
    result = fetch(t, t.uri(_key(request)), sha256(body), tmp_path / "models")
    assert result.code == 0, result.stderr
    assert "anonymous" in result.stdout
    for name in (ARTIFACT, METADATA):
        assert (tmp_path / "models" / name).read_bytes() == (iris_bundle / name).read_bytes()


@pytest.mark.parametrize("mount", ["env", "file"])
def test_credentials_from_a_secret_as_env_or_files(
    writable: Target, mount: str, iris_bundle: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The chart's two ways of handing a Secret to the init container; the output names which."""
    body = tar_gz(bundle_members(iris_bundle))
    writable.put(_key(request), body)
    if mount == "env":
        env, where = writable.env, "env "
    else:
        folder = tmp_path / "secret"
        folder.mkdir()
        for name, value in writable.env.items():
            (folder / name).write_text(value + "\n")  # kubectl create secret --from-file keeps newlines
        env, where = {"STORAGE_CREDENTIALS_DIR": str(folder)}, f"file {folder}/"
    result = run_cli(
        "fetch", "--bucket", writable.uri(_key(request)), "--sha256", sha256(body),
        "--dest", str(tmp_path / "models"), *writable.options, env=env,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert where in result.stdout, result.stdout


def test_a_public_bucket_is_read_anonymously(
    writable: Target, iris_bundle: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    body = tar_gz(bundle_members(iris_bundle))
    writable.put(_key(request), body, bucket="public")
    result = run_cli(
        "fetch", "--bucket", writable.uri(_key(request), "public"), "--sha256", sha256(body),
        "--dest", str(tmp_path / "models"), *writable.options, "--anonymous",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "anonymous" in result.stdout
    assert (tmp_path / "models" / ARTIFACT).read_bytes() == (iris_bundle / ARTIFACT).read_bytes()


# ---- the failures a user meets, one line each ------------------------------------------------------


def test_no_such_object(store: Target, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    result = fetch(store, store.uri(_key(request, "missing.tar.gz")), "0" * 64, tmp_path / "models")
    assert_refused(result, "no such object", "missing.tar.gz", "models", store.emu.endpoint)
    assert_nothing_unpacked(tmp_path / "models")


def test_no_such_bucket(store: Target, tmp_path: Path) -> None:
    result = fetch(store, store.uri("any/bundle.tar.gz", "no-such-bucket"), "0" * 64, tmp_path / "models")
    if store.provider == "gcs":  # not listed (see buckets._bucket_exists): named as a possibility
        assert_refused(result, "no such object", "or no bucket 'no-such-bucket'")
    else:
        kind = "container" if store.provider == "azure" else "bucket"
        assert_refused(result, f"no such {kind} 'no-such-bucket'", store.emu.endpoint)


def test_access_denied_names_the_identity_used(
    s3: emulators.Emulator, azure: emulators.Emulator, tmp_path: Path
) -> None:
    t = target(s3)
    t.put("denied/bundle.tar.gz", b"x", bucket="private")
    reader = {"AWS_ACCESS_KEY_ID": emulators.S3_READER[0], "AWS_SECRET_ACCESS_KEY": emulators.S3_READER[1]}
    result = run_cli(
        "fetch", "--bucket", "s3://private/denied/bundle.tar.gz", "--sha256", "0" * 64,
        "--dest", str(tmp_path / "a"), *t.options, env=reader,
    )  # fmt: skip
    assert_refused(
        result,
        "access denied",
        "s3://private/denied/bundle.tar.gz",
        "access key reader-key-id (env AWS_ACCESS_KEY_ID)",
    )

    result = run_cli(
        "fetch", "--bucket", "s3://private/denied/bundle.tar.gz", "--sha256", "0" * 64,
        "--dest", str(tmp_path / "b"), *t.options, "--anonymous",
    )  # fmt: skip
    assert_refused(result, "access denied", "anonymous client")

    a = target(azure)
    a.put("denied/bundle.tar.gz", b"x")
    wrong = {"AZURE_STORAGE_ACCOUNT_KEY": "d3Jvbmcta2V5"}
    result = run_cli(
        "fetch", "--bucket", "az://models/denied/bundle.tar.gz", "--sha256", "0" * 64,
        "--dest", str(tmp_path / "c"), *a.options, env=wrong,
    )  # fmt: skip
    assert_refused(
        result,
        "access denied",
        "account key of storage account devstoreaccount1 (env AZURE_STORAGE_ACCOUNT_KEY)",
    )
    for sub in "abc":
        assert_nothing_unpacked(tmp_path / sub)


def test_a_checksum_mismatch_is_refused_before_unpacking(
    store: Target, iris_bundle: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    swapped = tar_gz([*bundle_members(iris_bundle), member("../evil", b"x")])
    pinned = sha256(tar_gz(bundle_members(iris_bundle)))
    store.put(_key(request), swapped)
    result = fetch(store, store.uri(_key(request)), pinned, tmp_path / "models")
    assert_refused(result, f"expected {pinned}", "refusing to unpack")
    assert_nothing_unpacked(tmp_path / "models")
    assert not (tmp_path / "evil").exists()


def test_an_archive_over_the_cap_is_refused_before_download(
    store: Target, iris_bundle: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    body = tar_gz(bundle_members(iris_bundle))
    store.put(_key(request), body)
    result = fetch(
        store, store.uri(_key(request)), sha256(body), tmp_path / "models", env={"MAX_ARCHIVE_BYTES": "10000"}
    )
    assert_refused(result, "larger than 10000 bytes", f"it is {len(body)} bytes", "MAX_ARCHIVE_BYTES")
    assert_nothing_unpacked(tmp_path / "models")


def test_an_unreachable_endpoint_is_named(store: Target, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    options = [dead if o == store.emu.endpoint else o for o in store.options]
    if store.provider == "azure":
        options = [f"{dead}/{emulators.AZURITE_ACCOUNT}" if o == dead else o for o in options]
    result = run_cli(
        "fetch", "--bucket", store.uri("any/bundle.tar.gz"), "--sha256", "0" * 64,
        "--dest", str(tmp_path / "models"), *options, env={**store.env, "FETCH_DEADLINE_SECONDS": "3"},
    )  # fmt: skip
    assert_refused(result, "cannot reach", dead, "connection refused")
    assert_nothing_unpacked(tmp_path / "models")


# ---- broken and stalled streams -------------------------------------------------------------------


# 3 MiB that gzip cannot shrink, so the stream is long enough to break mid-way. The archive rules do not
# look inside model.skops (loading does), so these bytes pass the fetch.
_PAYLOAD = hashlib.shake_256(b"bucket-source-test").digest(3 * 1024 * 1024)


def _large_archive() -> bytes:
    return tar_gz([member(ARTIFACT, _PAYLOAD), member(METADATA, b"{}")])


@pytest.fixture
def proxied(store: Target) -> Iterator[tuple[Target, FaultProxy]]:
    port = int(store.emu.endpoint.split(":")[2].split("/")[0])
    proxy = FaultProxy(port)
    path = store.emu.endpoint.split(str(port), 1)[1]  # Azurite's /<account>
    options = [f"{proxy.endpoint}{path}" if o == store.emu.endpoint else o for o in store.options]
    yield Target(store.emu, options, store.env), proxy
    proxy.close()


@pytest.mark.parametrize("mode", ["cut", "stall"])
def test_a_broken_or_stalled_stream_is_resumed(
    proxied: tuple[Target, FaultProxy], mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    t, proxy = proxied
    body = _large_archive()
    t.put(_key(request), body)
    proxy.mode, proxy.after = mode, 1536 * 1024  # halfway
    result = fetch(
        t, t.uri(_key(request)), sha256(body), tmp_path / "models", env={"FETCH_STALL_SECONDS": "2"}
    )
    assert result.code == 0, result.stderr
    assert proxy.broken == 1
    # The second GET asks for the rest only: resumed from the bytes already on disk, not restarted.
    ranges = proxy.ranges()
    assert len(ranges) == 2 and ranges[0] is None, ranges
    assert (
        ranges[1] is not None and ranges[1].startswith("bytes=") and not ranges[1].startswith("bytes=0-")
    ), ranges
    assert (tmp_path / "models" / ARTIFACT).read_bytes() == _PAYLOAD


def test_an_object_replaced_mid_download_is_fetched_again_from_the_start(
    proxied: tuple[Target, FaultProxy], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A resume is pinned to the object's ETag: bytes of the old object never mix with the new one's.
    On GCS obstore's own resume of the broken body sends no If-Match, so the mix happens there, and the
    checksum refuses it: never unpacked, but not fetched again either."""
    t, proxy = proxied
    old = _large_archive()
    new_payload = hashlib.shake_256(b"bucket-source-test, version 2").digest(3 * 1024 * 1024)
    new = tar_gz([member(ARTIFACT, new_payload), member(METADATA, b"{}")])
    t.put(_key(request), old)
    proxy.mode, proxy.after = "cut", 1536 * 1024
    proxy.on_fault = lambda: t.put(_key(request), new)
    result = fetch(t, t.uri(_key(request)), sha256(new), tmp_path / "models")
    assert proxy.broken == 1
    if t.provider == "gcs":
        assert_refused(result, f"expected {sha256(new)}", "refusing to unpack")
        assert_nothing_unpacked(tmp_path / "models")
        return
    assert result.code == 0, result.stderr
    assert (tmp_path / "models" / ARTIFACT).read_bytes() == new_payload
    assert proxy.ranges()[-1] is None, proxy.ranges()  # the last GET read the new object whole


def test_a_stream_that_keeps_breaking_fails_with_a_reason(
    proxied: tuple[Target, FaultProxy], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    t, proxy = proxied
    body = _large_archive()
    t.put(_key(request), body)
    # Every connection breaks before the first 1 MiB chunk is complete: no resume gains a byte.
    proxy.mode, proxy.after, proxy.faulty = "cut", 64 * 1024, None
    result = fetch(t, t.uri(_key(request)), sha256(body), tmp_path / "models")
    assert_refused(result, "broke off 7 times", "6 times in a row without progress", f"of {len(body)} bytes")
    # obstore resumed each broken body itself (a range request) before model-server did.
    assert any(r is not None and r.startswith("bytes=") for r in proxy.ranges())
    assert_nothing_unpacked(tmp_path / "models")


def test_a_server_that_stalls_for_good_hits_the_deadline(
    proxied: tuple[Target, FaultProxy], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    t, proxy = proxied
    body = _large_archive()
    t.put(_key(request), body)
    proxy.mode, proxy.after, proxy.faulty = "stall", 64 * 1024, None
    env = {"FETCH_STALL_SECONDS": "1", "FETCH_DEADLINE_SECONDS": "4"}
    result = fetch(t, t.uri(_key(request)), sha256(body), tmp_path / "models", env=env)
    assert_refused(result, "cannot download", t.uri(_key(request)), "FETCH_DEADLINE_SECONDS (4 s)")
    assert_nothing_unpacked(tmp_path / "models")
