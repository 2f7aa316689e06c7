"""The ``model-server`` command: package, validate, serve, demo, fetch, archive, push."""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .bundle.bucket_uri import FORMS
from .errors import BundleError
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .bundle.bucket_uri import BucketLocation
    from .bundle.buckets import StoreOptions

# Not __doc__: the image runs with PYTHONOPTIMIZE=2, which drops docstrings.
DESCRIPTION = "The model-server command: package, validate, serve, demo, fetch, archive, push."
EXAMPLES = """
examples:
  model-server package --from-python train.py:build --name churn --version 1.0.0 --out bundles/churn
  model-server package --skops model.skops --reference train.csv \
      --name churn --version 1.0.0 --out bundles/churn
  model-server validate bundles/churn
  MODEL_BUNDLE=bundles/churn PORT=8000 model-server serve
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="model-server",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"model-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("package", help="turn a fitted estimator into a bundle directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--from-python",
        metavar="FILE.py:FUNC",
        help="call FUNC() from FILE.py (or module:func); it returns (estimator, X_reference) "
        "or (estimator, X_reference, feature_names)",
    )
    src.add_argument("--skops", type=Path, metavar="FILE", help="an estimator saved with skops.io.dump")
    p.add_argument(
        "--reference",
        type=Path,
        metavar="CSV",
        help="with --skops: a CSV sample of the training features (header = feature names)",
    )
    p.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help="with --skops: extra type to trust when reading FILE (repeatable; TRUSTED_TYPES too)",
    )
    p.add_argument("--name", required=True, help="model name (lower-case letters, digits, '-')")
    p.add_argument("--version", dest="model_version", required=True, help="model version, e.g. 1.2.0")
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--archive", type=Path, metavar="FILE.tar.gz", help="also write the bundle archive")

    v = sub.add_parser("validate", help="load a bundle exactly as the server does and predict one row")
    v.add_argument("bundle", type=Path)

    s = sub.add_parser(
        "serve", help="serve a bundle over HTTP and gRPC (settings from environment variables)"
    )
    s.add_argument("bundle", type=Path, nargs="?", help="bundle directory (default: $MODEL_BUNDLE)")
    s.add_argument("--host", help="listen address (default: $HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default: $PORT or 8000)")

    d = sub.add_parser("demo", help="build the demo bundles (iris-classifier, sales-regressor)")
    d.add_argument("--out", type=Path, required=True)

    # Where a bucket is and how to sign for it: shared by fetch --bucket and push.
    store = argparse.ArgumentParser(add_help=False)
    so = store.add_argument_group("object store options (with a bucket URI)")
    so.add_argument(
        "--endpoint", metavar="URL", help="S3-compatible store, emulator or other cloud: its base URL"
    )
    so.add_argument("--region", help="S3 region (default: $AWS_REGION, else us-east-1)")
    style = so.add_mutually_exclusive_group()
    style.add_argument(
        "--path-style",
        dest="path_style",
        action="store_const",
        const=True,
        help="S3 requests as <endpoint>/<bucket>/<key> (the default with --endpoint)",
    )
    style.add_argument(
        "--virtual-hosted",
        dest="path_style",
        action="store_const",
        const=False,
        help="S3 requests to <bucket>.<host> (the default for AWS)",
    )
    so.add_argument("--account", help="Azure storage account, for az://<container>/<key>")
    so.add_argument("--anonymous", action="store_true", help="unsigned requests, for a public bucket")

    f = sub.add_parser(
        "fetch",
        parents=[store],
        help="download a bundle archive (URL or bucket), check its sha256, unpack it",
        description="Download a bundle archive, check its sha256 before anything is unpacked, unpack it. "
        "Bucket credentials come from the environment (AWS_*, GOOGLE_*, AZURE_* as each cloud's SDKs "
        "read them, or workload identity), or from files of those names in $STORAGE_CREDENTIALS_DIR.",
    )
    where = f.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="http(s):// or file:// address of the archive")
    where.add_argument("--bucket", metavar="URI", help=f"the archive in an object store: {FORMS}")
    f.add_argument("--sha256", required=True)
    f.add_argument("--dest", type=Path, required=True)
    f.add_argument(
        "--record-failure",
        action="store_true",
        help="on failure, write the reason to DEST/FETCH_FAILED and exit 0, so the server starts and "
        "reports it (live, not ready) instead of the init container crash-looping",
    )

    a = sub.add_parser("archive", help="write the reproducible .tar.gz of a bundle (for the url source)")
    a.add_argument("bundle", type=Path)
    a.add_argument("out", type=Path)

    u = sub.add_parser(
        "push",
        parents=[store],
        help="write a bundle's reproducible archive to a bucket; print its sha256 and the chart values",
    )
    u.add_argument("bundle", type=Path)
    u.add_argument(
        "uri", help=f"{FORMS}; a URI ending in '/' gets <name>-<version>.tar.gz from the bundle appended"
    )

    args = parser.parse_args(argv)
    try:
        handler = {
            "package": _package,
            "validate": _validate,
            "serve": _serve,
            "demo": _demo,
            "fetch": _fetch,
            "archive": _archive,
            "push": _push,
        }[args.command]
        return handler(args)
    except (BundleError, SettingsError) as e:
        print(f"model-server {args.command}: {e}", file=sys.stderr)
        return 1


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def _package(args: argparse.Namespace) -> int:
    from .bundle.package import package
    from .bundle.trust import DEFAULT_TRUSTED_TYPES

    feature_names = None
    if args.from_python:
        if args.reference is not None:
            raise BundleError(
                "--reference goes with --skops; with --from-python, FUNC returns the reference data"
            )
        estimator, X, feature_names = _call_builder(args.from_python)
    else:
        if args.reference is None:
            raise BundleError("--skops needs --reference CSV (a sample of the training features)")
        estimator, X = _from_skops(args.skops, args.reference, args.trust)
    out = package(
        estimator, X, name=args.name, version=args.model_version, out=args.out, feature_names=feature_names
    )
    meta = json.loads((out / "metadata.json").read_text())
    print(
        f"wrote {out} ({meta['task']}, {len(meta['features'])} features, sha256 {meta['artifact']['sha256']})"
    )
    extra = sorted(set(meta["untrusted_types"]) - DEFAULT_TRUSTED_TYPES)
    if extra:
        print(f"note: serving it needs TRUSTED_TYPES={','.join(extra)}", file=sys.stderr)
    if args.archive:
        from .bundle.fetch import archive

        archive(out, args.archive)
        print(f"wrote {args.archive}")
    return 0


def _call_builder(spec: str) -> tuple[Any, Any, list[str] | None]:
    target, sep, func_name = spec.rpartition(":")
    if not sep or not target or not func_name:
        raise BundleError(f"--from-python wants FILE.py:FUNC or module:FUNC, got {spec!r}")
    path = Path(target)
    if target.endswith(".py") or path.is_file():
        if not path.is_file():
            raise BundleError(f"{target} does not exist")
        # The data scientist's own training script, run locally by them: that is the point of it.
        sys.path.insert(0, str(path.resolve().parent))
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise BundleError(f"cannot import {target}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise BundleError(f"{target} has no function {func_name}")
    result = func()
    if isinstance(result, dict):
        return result["estimator"], result["reference"], result.get("feature_names")
    if isinstance(result, tuple) and len(result) in (2, 3):
        return result[0], result[1], (list(result[2]) if len(result) == 3 and result[2] is not None else None)
    raise BundleError(
        f"{func_name}() must return (estimator, X_reference) or (estimator, X_reference, feature_names)"
    )


def _from_skops(model: Path, reference: Path, trust: list[str]) -> tuple[Any, Any]:
    import pandas as pd
    import skops.io as sio

    from .bundle.trust import UntrustedTypesError, check_trusted

    settings = _settings()
    try:
        data = model.read_bytes()
        needed = sio.get_untrusted_types(data=data)
    except Exception as e:  # noqa: BLE001 - not a file, or not skops
        raise BundleError(f"cannot read {model} as a skops file: {e}") from None
    try:
        trusted = check_trusted(needed, [*settings.trusted_types, *trust])
    except UntrustedTypesError as e:
        raise BundleError(f"refusing to load {model}: {e} (or pass --trust TYPE)") from None
    estimator = sio.loads(data, trusted=trusted)
    try:
        frame = pd.read_csv(reference)
    except (OSError, ValueError) as e:
        raise BundleError(f"cannot read {reference} as CSV: {e}") from None
    return estimator, frame


def _validate(args: argparse.Namespace) -> int:
    from .bundle.metadata import sample_record
    from .metrics import Metrics
    from .runtime.lifecycle import ModelRuntime

    # The server's own loader: checksum, versions, trust list, expected name/version, warm-up.
    runtime = ModelRuntime(_settings(), Metrics(), args.bundle)
    runtime.load()
    if not runtime.ready or runtime.schema is None or runtime.bundle is None:
        raise BundleError(runtime.reason)
    meta = runtime.bundle.metadata
    record = sample_record(meta)
    pred = runtime.predict_rows(runtime.schema.from_records([record]), meta.has_predict_proba)
    runtime.close()
    print(
        json.dumps(
            {
                "bundle": str(args.bundle),
                "name": meta.name,
                "version": meta.version,
                "task": meta.task,
                "estimator": meta.estimator,
                "input_kind": meta.input_kind,
                "features": {f.name: f.dtype for f in meta.features},
                "sha256": meta.sha256,
                "sample": record,
                "prediction": pred.predictions.tolist()[0],
            },
            indent=2,
        )
    )
    print("ok: the bundle loads and predicts", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    # Importing scikit-learn, scipy, pandas and skops allocates ~10^6 long-lived objects; the cyclic
    # collector's passes over them were ~15 % of the time to ready (make bench, cold start row). The
    # runtime re-enables it once the loaded heap is frozen (ModelRuntime.load), or if loading fails.
    gc.disable()
    from . import imports, logs

    imports.import_scikit_learn_without_pandas()  # before anything else imports scikit-learn
    from .http.server import serve

    settings = _settings(model_bundle=args.bundle, host=args.host, port=args.port)
    logs.configure(settings.log_level, settings.log_flush_interval_ms / 1000)
    logging.getLogger("model_server").info(
        "starting",
        extra={
            "version": __version__,
            "bundle": str(settings.model_bundle),
            "host": settings.host,
            "port": settings.port,
            "grpc_port": settings.grpc_port if settings.grpc_enabled else None,
        },
    )
    if not settings.grpc_enabled:
        return serve(settings)
    from .grpc.server import GrpcServer

    return serve(
        settings,
        lambda app: [GrpcServer(settings, app.state.runtime, app.state.metrics, app.state.in_flight)],
    )


def _demo(args: argparse.Namespace) -> int:
    from .demo import build_demo

    for path in build_demo(args.out):
        print(f"wrote {path}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .bundle.layout import FETCH_FAILED

    failed = args.dest / FETCH_FAILED
    failed.unlink(missing_ok=True)
    try:
        return _fetch_bundle(args)
    except (BundleError, SettingsError) as e:
        if not args.record_failure:
            raise
        print(f"model-server fetch: {e}", file=sys.stderr)
        args.dest.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{e}\n")
        print(f"recorded the failure in {failed}: the server will report it and stay not ready")
        return 0


def _fetch_bundle(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.url is not None:
        from .bundle.fetch import fetch

        dest = fetch(args.url, args.sha256, args.dest, settings.max_archive_bytes)
        print(f"unpacked {args.url} into {dest}")
        return 0
    from .bundle import bucket_uri
    from .bundle.fetch import fetch_bucket

    location = bucket_uri.parse(args.bucket, args.account)
    dest, identity = fetch_bucket(
        location, _store_options(args, settings), args.sha256, args.dest, settings.max_archive_bytes
    )
    print(f"unpacked {location.uri} into {dest} (read as {identity})")
    return 0


def _store_options(args: argparse.Namespace, settings: Settings) -> StoreOptions:
    from .bundle.buckets import StoreOptions

    return StoreOptions(
        endpoint=args.endpoint,
        region=args.region,
        path_style=args.path_style,
        anonymous=args.anonymous,
        credentials_dir=settings.storage_credentials_dir,
        deadline_seconds=settings.fetch_deadline_seconds,
        stall_seconds=settings.fetch_stall_seconds,
    )


def _push(args: argparse.Namespace) -> int:
    import hashlib
    import tempfile

    from .bundle import bucket_uri
    from .bundle.buckets import upload
    from .bundle.fetch import archive
    from .bundle.layout import ARTIFACT, METADATA

    settings = _settings()
    location = bucket_uri.parse(args.uri, args.account, allow_folder=True)
    try:
        meta = json.loads((args.bundle / METADATA).read_text())
        name, version = str(meta["name"]), str(meta["version"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{args.bundle} is not a bundle (reading {METADATA}: {e})") from None
    if not (args.bundle / ARTIFACT).is_file():
        raise BundleError(f"{args.bundle} is not a bundle: {ARTIFACT} is missing")
    location = location.in_folder(f"{name}-{version}.tar.gz")
    with tempfile.TemporaryDirectory(prefix="model-server-push-") as tmp:
        path = archive(args.bundle, Path(tmp) / "bundle.tar.gz")
        size = path.stat().st_size
        if size > settings.max_archive_bytes:
            raise BundleError(
                f"the archive is {size} bytes, more than MAX_ARCHIVE_BYTES ({settings.max_archive_bytes}): "
                "the fetch would refuse it"
            )
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        identity = upload(location, _store_options(args, settings), path)
    print(f"pushed {args.bundle} ({name} {version}, {size} bytes) to {location.uri} as {identity}")
    print(f"sha256 {digest}")
    print("chart values:")
    print(_values_snippet(name, version, location, digest, args))
    return 0


def _values_snippet(
    name: str, version: str, location: BucketLocation, digest: str, args: argparse.Namespace
) -> str:
    """The model block of the chart's values for this archive (YAML, ready to paste)."""
    bucket: dict[str, object] = {"uri": location.uri, "sha256": digest}
    if location.account:
        bucket["azureAccount"] = location.account
    if args.endpoint:
        bucket["endpoint"] = args.endpoint
    if args.region:
        bucket["region"] = args.region
    if args.path_style is not None:
        bucket["pathStyle"] = args.path_style
    if args.anonymous:
        bucket["anonymous"] = True
    lines = ["model:", f"  name: {name}", f'  version: "{version}"', "  source:", "    type: bucket"]
    lines.append("    bucket:")
    lines += [f"      {key}: {json.dumps(value)}" for key, value in bucket.items()]
    return "\n".join(lines)


def _archive(args: argparse.Namespace) -> int:
    from .bundle.fetch import archive

    print(f"wrote {archive(args.bundle, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
