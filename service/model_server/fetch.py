"""Download a bundle archive (.tar.gz of model.skops + metadata.json), check its sha256, unpack it.

Used by the chart's init container for the ``url`` model source. The archive is untrusted input: it
must match the pinned sha256 before anything is unpacked, only the two bundle files are extracted
(no links, no paths), and sizes are bounded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import IO

from .errors import BundleError
from .layout import ARTIFACT, METADATA

# A bundle is a model plus a small JSON file; 2 GiB bounds a hostile or wrong URL.
MAX_ARCHIVE_BYTES = 2 * 1024**3
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
    with tempfile.TemporaryFile() as tmp:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as resp:  # noqa: S310 - scheme checked above
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > MAX_ARCHIVE_BYTES:
                    raise BundleError(f"{url} is larger than {MAX_ARCHIVE_BYTES} bytes: not a bundle archive")
                digest.update(chunk)
                tmp.write(chunk)
        actual = digest.hexdigest()
        if actual != expected:
            raise BundleError(f"sha256 of {url} is {actual}, expected {expected}: refusing to unpack it")
        tmp.seek(0)
        return extract(tmp, dest)


def extract(fileobj: IO[bytes], dest: Path) -> Path:
    """Unpack only ``model.skops`` and ``metadata.json`` (regular files, top level) into ``dest``."""
    wanted = {ARTIFACT, METADATA}
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=".fetch-"))
    try:
        try:
            with tarfile.open(fileobj=fileobj, mode="r:gz") as tar:
                found: set[str] = set()
                for member in tar:
                    name = os.path.normpath(member.name)
                    if name not in wanted:
                        raise BundleError(
                            f"unexpected entry {member.name!r} in the archive: a bundle archive holds only "
                            f"{ARTIFACT} and {METADATA}"
                        )
                    if not member.isfile():
                        raise BundleError(f"archive entry {member.name!r} is not a regular file")
                    src = tar.extractfile(member)
                    if src is None:
                        raise BundleError(f"archive entry {member.name!r} cannot be read")
                    with open(staging / name, "wb") as out:
                        shutil.copyfileobj(src, out)
                    found.add(name)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise BundleError(f"the archive is not a readable .tar.gz: {e}") from None
        if found != wanted:
            raise BundleError(f"the archive lacks {', '.join(sorted(wanted - found))}")
        for name in (ARTIFACT, METADATA):  # metadata last, as in package()
            os.replace(staging / name, dest / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


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
