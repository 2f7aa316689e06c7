"""How much a skops artifact may unpack to, checked before skops reads it.

``model.skops`` is a zip. skops inflates the members it needs fully into memory through zipfile (the
schema, then every array's ``.npy``, all held at once while it builds the estimator), so a small file
can ask for gigabytes: a zip bomb gets the pod OOM-killed on every start, a crash loop instead of a
clear "not ready". ``check_unpacked_size`` reads only the zip's central directory (no decompression)
and refuses an artifact when

- the sizes its members declare add up to more than the cap ``effective_unpacked_cap`` works out:
  ``MAX_ARTIFACT_UNPACKED_BYTES`` (settings.py) when the operator set it, otherwise what the container's
  memory limit can load (loading peaks at about 3 times the unpacked size plus ~200 MiB for the
  libraries), at most 4 GiB and at least 64 MiB, or
- a member declares more than its compression method can produce from its compressed bytes: stored
  data 1 to 1, deflate (what skops and ``model-server package`` write) at most 1032 to 1, its limit
  (two-bit codes for a 258-byte match). Such sizes are forged.

No lower "suspicious ratio" is refused, since legitimate models come close to deflate's limit: a
HashingVectorizer with 2**20 features and an L1-penalised SGDClassifier (coefficients mostly exactly
zero) unpacks to 900 times its size (84 MB from 93 KB); a forest, a pipeline or a histogram GBM to
2-13 times (measured with artifact.dumps).

Declared sizes can lie, but not to our cost: zipfile never yields more than a member's declared
(central directory) size, it cuts the inflated stream there and fails the CRC check, and skops reads
members only through zipfile. A member declaring less than it holds therefore fails to load as a
corrupt file, and one declaring more is bounded by what it declares. So bounding the declared sizes
bounds what inflation can allocate; inflating every member once more just to measure it would double
the decompression work of every model load for no extra safety.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from ..errors import BundleError
from .layout import ARTIFACT

MiB = 1024**2
# Without a readable memory limit: 4 GiB, a model that needs a pod of some 12 GiB to load; past it an
# operator sets MAX_ARTIFACT_UNPACKED_BYTES on purpose.
DEFAULT_MAX_UNPACKED_BYTES = 4 * 1024**3
# Loading peaks at about 3 times the unpacked size (skops reads every member twice and holds the bytes
# while it builds the arrays: 234 MB for an 84 MB artifact) on top of ~200 MiB for Python, numpy, scipy,
# scikit-learn and the web server.
_PEAK_FACTOR = 3
_LIBRARIES_BYTES = 200 * MiB
# Never derive less than 64 MiB: a pod too small for that cannot run the libraries anyway, and a cap
# near 0 would refuse every honest model with a message about the cap instead of the memory.
MIN_DERIVED_UNPACKED_BYTES = 64 * MiB
# Read at call time (not bound as a default argument) so tests can point it at a fake cgroup tree.
CGROUP_ROOT = Path("/sys/fs/cgroup")


def container_memory_limit(cgroup_root: Path | None = None) -> int | None:
    """The container's memory limit in bytes from cgroup v2 ``memory.max`` or cgroup v1
    ``memory/memory.limit_in_bytes``; None when neither is readable or it says unlimited (v2 "max";
    v1 writes unlimited as a huge number, which the 4 GiB ceiling absorbs)."""
    root = CGROUP_ROOT if cgroup_root is None else cgroup_root
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            limit = int(text)
        except ValueError:
            continue  # unexpected content: try the other layout, else no limit known
        return limit if limit > 0 else None
    return None


def effective_unpacked_cap(setting: int | None, cgroup_root: Path | None = None) -> tuple[int, str]:
    """The cap on model.skops' declared unpacked size, and the words naming it in a refusal.

    An explicit MAX_ARTIFACT_UNPACKED_BYTES always wins. Unset, the cap is what the container's memory
    limit can load, ``(limit - 200 MiB) / 3``, within [64 MiB, 4 GiB]: without it the chart's default
    512Mi pod would be OOM-killed in a loop by any bomb between ~100 MiB and 4 GiB."""
    if setting is not None:
        return setting, f"MAX_ARTIFACT_UNPACKED_BYTES ({setting})"
    default = DEFAULT_MAX_UNPACKED_BYTES, f"MAX_ARTIFACT_UNPACKED_BYTES ({DEFAULT_MAX_UNPACKED_BYTES})"
    limit = container_memory_limit(cgroup_root)
    if limit is None:
        return default
    derived = max(MIN_DERIVED_UNPACKED_BYTES, (limit - _LIBRARIES_BYTES) // _PEAK_FACTOR)
    if derived >= DEFAULT_MAX_UNPACKED_BYTES:
        return default
    return derived, (
        f"the {derived}-byte cap derived from this container's {limit / MiB:g} MiB memory limit "
        "(set MAX_ARTIFACT_UNPACKED_BYTES to override)"
    )


# Most bytes one compressed byte can stand for, per compression method (others: no bound known, the
# total cap alone applies).
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}


def check_unpacked_size(data: bytes, max_unpacked_bytes: int, cap_name: str | None = None) -> None:
    """Raise BundleError, naming the limit (``cap_name``, from effective_unpacked_cap) and the numbers,
    if the zip ``data`` declares more than ``max_unpacked_bytes`` in all, or a member more than its
    compressed bytes can hold."""
    cap_name = cap_name or f"MAX_ARTIFACT_UNPACKED_BYTES ({max_unpacked_bytes})"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception as e:  # noqa: BLE001 - a corrupt zip raises anything from zipfile/struct
        raise BundleError(f"{ARTIFACT} is not a readable skops file: {e}") from None
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_unpacked_bytes:
        largest = max(members, key=lambda m: m.file_size)
        raise BundleError(
            f"{ARTIFACT} would unpack to {unpacked} bytes, more than {cap_name}; "
            f"its largest member {largest.filename!r} declares "
            f"{largest.file_size} bytes from {largest.compress_size} compressed. Refusing to load it: "
            "if the model really is that large, give the pod the memory for it and raise "
            "MAX_ARTIFACT_UNPACKED_BYTES"
        )
    for m in members:
        ratio = _MAX_RATIO.get(m.compress_type)
        if ratio is not None and m.file_size > ratio * m.compress_size:
            raise BundleError(
                f"{ARTIFACT} member {m.filename!r} declares {m.file_size} bytes from {m.compress_size} "
                f"compressed, more than its compression can produce (at most {ratio} to 1): its sizes "
                "are forged, refusing to load it"
            )
