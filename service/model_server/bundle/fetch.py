"""Download a bundle archive (.tar.gz of model.skops + metadata.json), check its sha256, unpack it.

Used by the chart's init container for the ``url`` model source and, with the archive read by
buckets.py, the ``bucket`` source. The archive is untrusted input whatever its source: it must match
the pinned sha256 before anything is unpacked, only the two bundle files are extracted (no links, no
paths), and sizes are bounded.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import BundleError
from .bucket_uri import BucketLocation
from .buckets import StoreOptions
from .layout import ARTIFACT, METADATA

# A bundle is a model plus a small JSON file; 2 GiB bounds a hostile or wrong URL or object (the
# default of MAX_ARCHIVE_BYTES, settings.py).
MAX_ARCHIVE_BYTES = 2 * 1024**3
# Unpacked, a bundle is about as large as its archive (the skops artifact is already deflated, so
# gzip gains little). Up to 64 MiB plus 20 times the archive's size, never more than 2 GiB, leaves
# ample room for real bundles and refuses a decompression bomb before it fills the init container's
# volume or memory. Every byte counts, tar headers included (tarfile reads a pax header whole).
MAX_UNPACKED_BYTES = MAX_ARCHIVE_BYTES
_UNPACKED_FLOOR = 64 * 1024**2
_UNPACKED_RATIO = 20
_CHUNK = 1024 * 1024
_TIMEOUT_SECONDS = 60


def fetch(url: str, sha256: str, dest: Path, max_archive_bytes: int = MAX_ARCHIVE_BYTES) -> Path:
    """The ``url`` source: download ``url``, check its sha256, unpack the bundle into ``dest``."""
    expected = _expected_sha256(sha256)
    if not url.startswith(("https://", "http://", "file://")):
        raise BundleError(f"unsupported URL {url!r}: use https://, http:// or file://")
    return _fetch_checked(url, expected, dest, max_archive_bytes, lambda sink: _download_url(url, sink))


def fetch_bucket(
    location: BucketLocation,
    options: StoreOptions,
    sha256: str,
    dest: Path,
    max_archive_bytes: int = MAX_ARCHIVE_BYTES,
) -> tuple[Path, str]:
    """The ``bucket`` source: the same checks as ``fetch``, the archive read from an object store.
    Returns the bundle directory and the identity that read it."""
    from .buckets import download

    expected = _expected_sha256(sha256)
    identity: list[str] = []

    def read(sink: ArchiveSink) -> None:
        identity.append(download(location, options, sink))

    path = _fetch_checked(location.uri, expected, dest, max_archive_bytes, read)
    return path, identity[0]


def _expected_sha256(sha256: str) -> str:
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise BundleError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    return expected


def _fetch_checked(
    name: str, expected: str, dest: Path, max_archive_bytes: int, download: Callable[[ArchiveSink], None]
) -> Path:
    """Run ``download`` into a sink in ``dest``; unpack only what matches ``expected``."""
    dest.mkdir(parents=True, exist_ok=True)
    # The download waits in dest, the volume sized for the model (the pod's /tmp is small), as an
    # unnamed file that disappears whatever happens.
    with tempfile.TemporaryFile(dir=dest) as tmp:
        sink = ArchiveSink(tmp, name, max_archive_bytes)
        download(sink)
        actual = sink.digest.hexdigest()
        if actual != expected:
            raise BundleError(f"sha256 of {name} is {actual}, expected {expected}: refusing to unpack it")
        tmp.seek(0)
        return extract(tmp, dest)


class ArchiveSink:
    """The archive as it arrives: written to a file, hashed, and counted against the size cap."""

    def __init__(self, file: IO[bytes], name: str, max_bytes: int) -> None:
        self.file = file
        self.name = name
        self.max_bytes = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()

    def expect(self, total: int) -> None:
        """Refuse before the first byte when the store already says the object is too large."""
        if total > self.max_bytes:
            raise self._too_large(f"it is {total} bytes")

    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise self._too_large(f"more than {self.max_bytes} bytes arrived")
        self.digest.update(chunk)
        self.file.write(chunk)

    def restart(self) -> None:
        """The source changed under a resumed download: drop what arrived and start again."""
        self.file.seek(0)
        self.file.truncate()
        self.size = 0
        self.digest = hashlib.sha256()

    def _too_large(self, detail: str) -> BundleError:
        return BundleError(
            f"{self.name} is larger than {self.max_bytes} bytes ({detail}; MAX_ARCHIVE_BYTES): "
            "not a bundle archive, or raise MAX_ARCHIVE_BYTES and the volume's sizeLimit"
        )


def _download_url(url: str, sink: ArchiveSink) -> None:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as resp:  # noqa: S310 - scheme checked by fetch
            while chunk := resp.read(_CHUNK):
                sink.write(chunk)
            # http.client stops quietly when the connection closes before Content-Length.
            missing = getattr(resp, "length", None)
    except urllib.error.HTTPError as e:
        raise BundleError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except http.client.IncompleteRead:
        raise BundleError(
            f"cannot download {url}: the download is incomplete (the connection closed after "
            f"{sink.size} bytes)"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise BundleError(f"cannot download {url}: {getattr(e, 'reason', None) or e}") from None
    if missing:
        raise BundleError(
            f"cannot download {url}: the download is incomplete (the connection closed after {sink.size} of "
            f"{sink.size + missing} bytes)"
        )


def extract(fileobj: IO[bytes], dest: Path) -> Path:
    """Unpack only ``model.skops`` and ``metadata.json`` (regular files, top level) into ``dest``."""
    wanted = {ARTIFACT, METADATA}
    dest.mkdir(parents=True, exist_ok=True)
    start = fileobj.tell()
    compressed = fileobj.seek(0, os.SEEK_END) - start
    fileobj.seek(start)
    stream = _Capped(gzip.GzipFile(fileobj=fileobj, mode="rb"), compressed)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".fetch-"))
    try:
        try:
            # Stream mode: members in order, every byte read through the cap.
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                found: set[str] = set()
                for member in tar:
                    name = os.path.normpath(member.name)
                    if name not in wanted:
                        raise BundleError(
                            f"unexpected entry {member.name!r} in the archive: a bundle archive holds only "
                            f"{ARTIFACT} and {METADATA}"
                        )
                    if not member.isfile() or member.issparse():
                        raise BundleError(f"archive entry {member.name!r} is not a regular file")
                    if member.size > stream.left:
                        raise stream.bomb(f"entry {member.name!r} alone is {member.size} bytes")
                    src = tar.extractfile(member)
                    if src is None:
                        raise BundleError(f"archive entry {member.name!r} cannot be read")
                    with open(staging / name, "wb") as out:
                        shutil.copyfileobj(src, out)
                    found.add(name)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise BundleError(f"the archive is not a readable .tar.gz: {e}") from None
        if found != wanted:
            raise BundleError(f"the archive lacks {', '.join(sorted(wanted - found))}")
        for name in (ARTIFACT, METADATA):  # metadata last, as in package()
            os.replace(staging / name, dest / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


class _Capped:
    """The decompressed archive, refusing to yield more than a bundle of its size could hold."""

    def __init__(self, raw: gzip.GzipFile, compressed: int) -> None:
        self.raw = raw
        self.compressed = compressed
        self.limit = min(MAX_UNPACKED_BYTES, _UNPACKED_FLOOR + _UNPACKED_RATIO * compressed)
        self.left = self.limit

    def read(self, size: int = -1) -> bytes:
        want = self.left + 1 if size < 0 else min(size, self.left + 1)
        data = self.raw.read(want)
        self.left -= len(data)
        if self.left < 0:
            raise self.bomb("its contents go on past that")
        return data

    def bomb(self, detail: str) -> BundleError:
        return BundleError(
            f"the archive would unpack to more than {self.limit} bytes ({detail}); an archive of "
            f"{self.compressed} bytes holding a real bundle does not, so this looks like a decompression "
            "bomb: refusing it"
        )


def archive(bundle: Path, out: Path) -> Path:
    """Write the reproducible .tar.gz of a bundle (fixed order, owners and times; gzip without mtime)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in (ARTIFACT, METADATA):
                    data = (bundle / name).read_bytes()
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mode = 0o644
                    info.mtime = 0
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    tar.addfile(info, io.BytesIO(data))
    return out
