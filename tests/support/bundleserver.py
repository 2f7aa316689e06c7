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
rollouts from one version to the next.
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


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bundleserver")
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--dir", type=Path, default=Path("/tmp"))
    p.add_argument("--version", default="", help="serve the bundle as this version of its model")
    args = p.parse_args(argv)
    meta = json.loads((args.bundle / "metadata.json").read_text())
    if args.version:
        copy = args.dir / f"bundle-{args.version}"
        shutil.copytree(args.bundle, copy)
        meta["version"] = args.version
        (copy / "metadata.json").write_text(json.dumps(meta, indent=2))
        args.bundle = copy
    name = f"{meta['name']}-{meta['version']}.tar.gz"
    path = args.dir / name
    subprocess.run(["model-server", "archive", str(args.bundle), str(path)], check=True)
    data = path.read_bytes()
    print(f"ARCHIVE /{name} {hashlib.sha256(data).hexdigest()} {len(data)}", flush=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in (f"/{name}", f"/broken/{name}"):
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
