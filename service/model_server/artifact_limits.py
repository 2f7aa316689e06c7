"""How much a skops artifact may unpack to, checked before skops reads it.

``model.skops`` is a zip. skops inflates the members it needs fully into memory through zipfile (the
schema, then every array's ``.npy``, all held at once while it builds the estimator), so a small file
can ask for gigabytes: a zip bomb gets the pod OOM-killed on every start, a crash loop instead of a
clear "not ready". ``check_unpacked_size`` reads only the zip's central directory (no decompression)
and refuses an artifact when

- the sizes its members declare add up to more than ``MAX_ARTIFACT_UNPACKED_BYTES`` (settings.py,
  default 4 GiB; an operator raises it for a model that really is that large), or
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

from .errors import BundleError
from .layout import ARTIFACT

# Most bytes one compressed byte can stand for, per compression method (others: no bound known, the
# total cap alone applies).
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1032}


def check_unpacked_size(data: bytes, max_unpacked_bytes: int) -> None:
    """Raise BundleError, naming the limit and the numbers, if the zip ``data`` declares more than
    ``max_unpacked_bytes`` in all, or a member more than its compressed bytes can hold."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception as e:  # noqa: BLE001 - a corrupt zip raises anything from zipfile/struct
        raise BundleError(f"{ARTIFACT} is not a readable skops file: {e}") from None
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_unpacked_bytes:
        largest = max(members, key=lambda m: m.file_size)
        raise BundleError(
            f"{ARTIFACT} would unpack to {unpacked} bytes, more than MAX_ARTIFACT_UNPACKED_BYTES "
            f"({max_unpacked_bytes}); its largest member {largest.filename!r} declares "
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
