"""Download a bundle archive (.tar.gz of model.skops + metadata.json), check its sha256, unpack it.

Used by the chart's init container for the ``url`` model source. The archive is untrusted input: it
must match the pinned sha256 before anything is unpacked, only the two bundle files are extracted
(no links, no paths), and sizes are bounded.
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
from pathlib import Path
from typing import IO

from ..errors import BundleError
from .layout import ARTIFACT, METADATA

# A bundle is a model plus a small JSON file; 2 GiB bounds a hostile or wrong URL.
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


def fetch(url: str, sha256: str, dest: Path) -> Path:
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise BundleError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    if not url.startswith(("https://", "http://", "file://")):
        raise BundleError(f"unsupported URL {url!r}: use https://, http:// or file://")
    digest = hashlib.sha256()
    size = 0
    dest.mkdir(parents=True, exist_ok=True)
    # The download waits in dest, the volume sized for the model (the pod's /tmp is small), as an
    # unnamed file that disappears whatever happens.
    with tempfile.TemporaryFile(dir=dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as resp:  # noqa: S310 - scheme checked above
                while chunk := resp.read(_CHUNK):
                    size += len(chunk)
                    if size > MAX_ARCHIVE_BYTES:
                        raise BundleError(
                            f"{url} is larger than {MAX_ARCHIVE_BYTES} bytes: not a bundle archive"
                        )
                    digest.update(chunk)
                    tmp.write(chunk)
                # http.client stops quietly when the connection closes before Content-Length.
                missing = getattr(resp, "length", None)
        except urllib.error.HTTPError as e:
            raise BundleError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
        except http.client.IncompleteRead:
            raise BundleError(
                f"cannot download {url}: the download is incomplete (the connection closed after "
                f"{size} bytes)"
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            raise BundleError(f"cannot download {url}: {getattr(e, 'reason', None) or e}") from None
        if missing:
            raise BundleError(
                f"cannot download {url}: the download is incomplete (the connection closed after {size} of "
                f"{size + missing} bytes)"
            )
        actual = digest.hexdigest()
        if actual != expected:
            raise BundleError(f"sha256 of {url} is {actual}, expected {expected}: refusing to unpack it")
        tmp.seek(0)
        return extract(tmp, dest)


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
