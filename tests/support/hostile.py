"""Builders of hostile model bundles and bundle archives, crafted byte by byte where the normal
tools refuse to write them (skops.io.dump cannot save a call to os.system; tarfile.add never writes
a '../' name).

Every builder writes into a directory the test owns; the payloads only ever touch a marker file
inside it, so a payload that did run is harmless and visible.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ARTIFACT = "model.skops"
METADATA = "metadata.json"
MiB = 1024 * 1024
GiB = 1024 * MiB
_next_id = iter(range(900_001, 999_999))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def read_metadata(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / METADATA).read_text())


def write_metadata(bundle: Path, meta: dict[str, Any]) -> None:
    (bundle / METADATA).write_text(json.dumps(meta, indent=2))


def edit_metadata(bundle: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    meta = read_metadata(bundle)
    edit(meta)
    write_metadata(bundle, meta)
    return bundle


def set_artifact(bundle: Path, data: bytes, *, fix_checksum: bool = True) -> Path:
    """Replace model.skops; with ``fix_checksum`` metadata.json gets the new sha256, so the load
    gets past the checksum and the next defence (trust list, format) has to refuse it."""
    (bundle / ARTIFACT).write_bytes(data)
    if fix_checksum:
        edit_metadata(bundle, lambda m: m["artifact"].__setitem__("sha256", sha256(data)))
    return bundle


# ---- skops schema nodes ---------------------------------------------------------------------


def _str_node(value: str) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": next(_next_id),
    }


def call_node(module: str, name: str, *args: str) -> dict[str, Any]:
    """``module.name(*args)`` at load time: skops' ConstructorFromReduceNode calls the type it names
    with the stored arguments, so naming a function instead of a class makes it a call."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_str_node(a) for a in args],
            "__id__": next(_next_id),
        },
        "__id__": next(_next_id),
    }


def function_node(module: str, name: str) -> dict[str, Any]:
    """A reference to a function (eval, exec, os.system...), as skops stores e.g. a score function."""
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode", "__id__": next(_next_id)}


def object_node(module: str, name: str) -> dict[str, Any]:
    """An instance of a class the server does not know (a data scientist's own transformer)."""
    empty = {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": {},
        "key_types": {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [],
            "__id__": next(_next_id),
        },
        "__id__": next(_next_id),
    }
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ObjectNode",
        "content": empty,
        "__id__": next(_next_id),
    }


def inject_attribute(artifact: bytes, attribute: str, node: dict[str, Any]) -> bytes:
    """Add ``estimator.<attribute> = <node>`` to a skops artifact: a valid skops file that a
    trusting loader would build, payload included."""
    with zipfile.ZipFile(io.BytesIO(artifact)) as src:
        files = {n: src.read(n) for n in src.namelist()}
    schema = json.loads(files["schema.json"])
    attrs = schema["content"]  # the estimator's __dict__, a DictNode
    attrs["content"][attribute] = node
    attrs["key_types"]["content"].append(
        {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": next(_next_id)}
    )
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in files.items():
            dst.writestr(name, data)
    return out.getvalue()


def add_zero_member(artifact: bytes, name: str, size: int) -> bytes:
    """A skops artifact plus a member of ``size`` zero bytes: deflate packs them about 1000 to 1, a real
    zip bomb (valid sizes and CRC). Streamed in, so building it never holds ``size`` bytes."""
    out = io.BytesIO(artifact)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as dst:
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zeros = bytes(MiB)
        with dst.open(info, "w") as f:
            for _ in range(size // MiB):
                f.write(zeros)
            f.write(bytes(size % MiB))
    return out.getvalue()


def declare_size(artifact: bytes, name: str, size: int) -> bytes:
    """The artifact with member ``name``'s uncompressed size rewritten to ``size`` (below 4 GiB) in its
    central directory entry and local header; the data and CRC are left as they are: a lie."""
    data = bytearray(artifact)
    end = data.rfind(b"PK\x05\x06")  # end of central directory: entry count and offset
    count, pos = struct.unpack_from("<H", data, end + 10)[0], struct.unpack_from("<I", data, end + 16)[0]
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46 : pos + 46 + name_len] == name.encode():
            struct.pack_into("<I", data, pos + 24, size)
            local = struct.unpack_from("<I", data, pos + 42)[0]
            struct.pack_into("<I", data, local + 22, size)
            return bytes(data)
        pos += 46 + name_len + extra_len + comment_len
    raise KeyError(name)


# ---- archives -------------------------------------------------------------------------------


class Zeros(io.RawIOBase):
    """A file of ``size`` zero bytes that never exists in memory at once."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def member(
    name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE, link: str = "", size: int | None = None
) -> tuple[tarfile.TarInfo, Any]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    info.size = len(data) if size is None else size
    body = None if kind != tarfile.REGTYPE else (io.BytesIO(data) if size is None else Zeros(size))
    return info, body


def tar_gz(members: list[tuple[tarfile.TarInfo, Any]], *, pax: dict[str, str] | None = None) -> bytes:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, pax_headers=pax or {}) as tar:
            for info, body in members:
                tar.addfile(info, body)
    return raw.getvalue()


def bundle_members(bundle: Path) -> list[tuple[tarfile.TarInfo, Any]]:
    return [
        member(ARTIFACT, (bundle / ARTIFACT).read_bytes()),
        member(METADATA, (bundle / METADATA).read_bytes()),
    ]


def gzip_bomb(name: str, size: int) -> bytes:
    """A .tar.gz whose one member unpacks to ``size`` bytes of zeros, about size/1000 compressed.

    The gzip stream is one compressed MiB of zeros repeated (a multi-member gzip, which every gzip
    reader accepts), so building a 3 GiB bomb costs milliseconds and no memory.
    """
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    zeros = _gzip_member(bytes(MiB))
    parts = [_gzip_member(header)] + [zeros] * (size // MiB)
    tail = size % MiB
    # Pad the data to a 512-byte block, then the two zero blocks that end a tar archive.
    padding = (-size) % tarfile.BLOCKSIZE + 2 * tarfile.BLOCKSIZE
    parts.append(_gzip_member(bytes(tail + padding)))
    return b"".join(parts)


def pax_bomb(size: int) -> bytes:
    """A .tar.gz whose first header is a pax extended header of ``size`` bytes: tarfile reads such a
    header into memory whole, before any member is seen."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = size
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    return _gzip_member(header) + _gzip_member(bytes(MiB)) * (size // MiB + 1)


def _gzip_member(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member with header and trailer
    return c.compress(data) + c.flush()


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root`` (links not followed) with its kind and size: to prove nothing else
    was written."""
    out: dict[str, tuple[str, int]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
        out[str(p.relative_to(root))] = (kind, 0 if kind == "dir" else st.st_size)
    return out


class Sandbox:
    """A directory holding the fetch target and its neighbours, to prove nothing escapes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dest = root / "models"
        self.outside = root / "outside"
        self.outside.mkdir(parents=True)
        (self.outside / "keep.txt").write_text("must stay untouched\n")
        self.before = snapshot(root)

    def assert_untouched(self, also_absent: tuple[Path, ...] = ()) -> None:
        after = snapshot(self.root)
        new = {k: v for k, v in after.items() if k not in self.before and k != "models"}
        assert new == {}, f"the refused archive left {new}"
        assert {k: v for k, v in after.items() if k in self.before} == self.before
        if self.dest.exists():
            assert list(self.dest.iterdir()) == [], f"left in the target: {list(self.dest.iterdir())}"
        for path in also_absent:
            assert not os.path.lexists(path), f"{path} was written"


Case = tuple[list[tuple[tarfile.TarInfo, object]], tuple[str, ...], tuple[Path, ...]]


def escapes(sb: Sandbox, bundle: Path) -> dict[str, Case]:
    """name -> (members, phrases the refusal must contain, paths that must not exist afterwards)."""
    good = bundle_members(bundle)
    absolute = sb.outside / "absolute-evil"
    return {
        "dot-dot": (
            [*good, member("../outside/evil", b"x")],
            ("unexpected entry '../outside/evil'",),
            (sb.outside / "evil",),
        ),
        "dot-dot-nested": (
            [member("models/../../escaped", b"x"), *good],
            ("unexpected entry",),
            (sb.root.parent / "escaped",),
        ),
        "absolute-path": (
            [member(str(absolute), b"x"), *good],
            (f"unexpected entry '{absolute}'",),
            (absolute,),
        ),
        # A symlink named like a bundle file, then a file written "through" it.
        "symlink-then-write": (
            [
                member(ARTIFACT, kind=tarfile.SYMTYPE, link=str(sb.outside / "via-link")),
                member(ARTIFACT, b"payload"),
                good[1],
            ],
            ("model.skops", "not a regular file"),
            (sb.outside / "via-link",),
        ),
        "symlink-relative": (
            [member(METADATA, kind=tarfile.SYMTYPE, link="../outside/keep.txt"), good[0]],
            ("metadata.json", "not a regular file"),
            (),
        ),
        "hardlink-outside": (
            [member(ARTIFACT, kind=tarfile.LNKTYPE, link=str(sb.outside / "keep.txt")), good[1]],
            ("model.skops", "not a regular file"),
            (),
        ),
        "device-node": ([member(ARTIFACT, kind=tarfile.CHRTYPE), good[1]], ("not a regular file",), ()),
        "directory": ([member("model.skops/", kind=tarfile.DIRTYPE), good[1]], ("not a regular file",), ()),
        "extra-file": ([*good, member("README", b"hi")], ("unexpected entry 'README'",), ()),
        "missing-metadata": ([good[0]], ("lacks metadata.json",), ()),
    }
