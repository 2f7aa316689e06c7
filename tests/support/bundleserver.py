"""An HTTP server of bundle archives for the `url` source tests, run in a pod of the server image
(`python -c`, standard library only):

    python -c "$(cat bundleserver.py)" --bundle /opt/model-server/bundles/iris-classifier --port 8080

It writes the bundle's reproducible archive with `model-server archive` (so its sha256 is the one the
chart scenarios pin), then serves
- `/<name>-<version>.tar.gz`: the archive, whole;
- `/broken/<name>-<version>.tar.gz`: the same headers (its full Content-Length), half of the bytes, then
  the connection closes: a download broken midway, as a proxy or a store restart leaves it;
- anything else: 404.
It prints `ARCHIVE <path> <sha256> <bytes>` once the archive is written. `--version 2.0.0` serves the
same model as another version of it (its metadata says 2.0.0): a second release of the model, for
rollouts from one version to the next. `--drifted 3.0.0` also serves `/<name>-3.0.0.tar.gz`: the same
trees with their class labels rotated (what a training run with shifted labels would produce), so the
version loads, answers fast and confidently, and predicts other classes than the first on the same rows:
a bad release that only its predictions give away. Each archive gets its own `ARCHIVE` line.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
from pathlib import Path


def publish(bundle: Path, version: str, work: Path) -> dict[str, bytes]:
    """Archive ``bundle`` (as ``version`` when given); print its ARCHIVE line; {path: bytes}."""
    meta = json.loads((bundle / "metadata.json").read_text())
    if version:
        copy = work / f"bundle-{version}"
        shutil.copytree(bundle, copy)
        meta["version"] = version
        (copy / "metadata.json").write_text(json.dumps(meta, indent=2))
        bundle = copy
    name = f"{meta['name']}-{meta['version']}.tar.gz"
    path = work / name
    subprocess.run(["model-server", "archive", str(bundle), str(path)], check=True)
    data = path.read_bytes()
    print(f"ARCHIVE /{name} {hashlib.sha256(data).hexdigest()} {len(data)}", flush=True)
    return {f"/{name}": data}


def drift(bundle: Path, dst: Path) -> Path:
    """A copy of a classifier bundle whose model names every prediction by the next class: classes_
    rotated, the metadata's classes and checksum to match (the server checks both at load)."""
    import numpy as np
    import skops.io as sio

    shutil.copytree(bundle, dst)
    meta = json.loads((dst / "metadata.json").read_text())
    artifact = dst / meta["artifact"]["file"]
    model = sio.load(artifact, trusted=meta.get("untrusted_types", []))
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    final.classes_ = np.roll(final.classes_, 1)
    sio.dump(model, artifact)
    meta["classes"] = [str(c) for c in final.classes_]
    meta["artifact"]["sha256"] = hashlib.sha256(artifact.read_bytes()).hexdigest()
    (dst / "metadata.json").write_text(json.dumps(meta, indent=2))
    return dst


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bundleserver")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--dir", type=Path, default=Path("/tmp"))
    p.add_argument("--version", default="", help="serve the bundle as this version of its model")
    p.add_argument(
        "--drifted", default="", help="also serve a copy with rotated class labels as this version"
    )
    args = p.parse_args(argv)
    archives: dict[str, bytes] = {}
    archives.update(publish(args.bundle, args.version, args.dir))
    if args.drifted:
        archives.update(publish(drift(args.bundle, args.dir / "drifted"), args.drifted, args.dir))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = archives.get(self.path.removeprefix("/broken"))
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.path.startswith("/broken/"):
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)

    http.server.ThreadingHTTPServer(("", args.port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
