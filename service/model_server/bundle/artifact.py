"""Byte-reproducible skops artifacts.

``skops.io.dumps`` writes a zip whose entries carry the current time and are named after Python
object ids (``140289035704560.npy``), so the same estimator gives a different file, and sha256, on
every save. Here those ids are renumbered in the order the schema first mentions them, entries are
sorted and stamped with a fixed date, which makes the bytes a function of the estimator alone (for a
given scikit-learn, skops, numpy and zlib). The renumbering keeps the schema's references consistent,
so skops loads the result exactly as it loads its own output.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from typing import Any

SCHEMA = "schema.json"
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
_FILE_NAME = re.compile(r"(\d+)(\.[A-Za-z0-9]+)")


def dumps(estimator: Any) -> bytes:
    # Imported here: the server reads artifacts (load.py, skops_import.py) and never writes one.
    import skops.io as sio

    return normalise(sio.dumps(estimator))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalise(raw: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as src:
        schema = json.loads(src.read(SCHEMA))
        files = {name: src.read(name) for name in src.namelist() if name != SCHEMA}
    ids: dict[int, int] = {}

    def new_id(old: int) -> int:
        return ids.setdefault(old, len(ids) + 1)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    out[key] = new_id(value)
                elif key == "file" and isinstance(value, str) and (m := _FILE_NAME.fullmatch(value)):
                    out[key] = f"{new_id(int(m.group(1)))}{m.group(2)}"
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    schema = walk(schema)
    renamed: dict[str, bytes] = {}
    for name, data in files.items():
        m = _FILE_NAME.fullmatch(name)
        if not m or int(m.group(1)) not in ids:
            raise ValueError(f"unexpected entry {name!r} in the skops artifact: cannot make it reproducible")
        renamed[f"{ids[int(m.group(1))]}{m.group(2)}"] = data
    renamed[SCHEMA] = json.dumps(schema, indent=2).encode()

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(renamed):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            dst.writestr(info, renamed[name], compresslevel=6)
    return out.getvalue()
