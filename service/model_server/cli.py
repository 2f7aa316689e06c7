"""The ``model-server`` command: package, validate, serve, demo, fetch, archive."""

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
from typing import Any

from . import __version__
from .errors import BundleError
from .settings import Settings, SettingsError

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
        description=__doc__,
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

    s = sub.add_parser("serve", help="serve a bundle over HTTP (settings from environment variables)")
    s.add_argument("bundle", type=Path, nargs="?", help="bundle directory (default: $MODEL_BUNDLE)")
    s.add_argument("--host", help="listen address (default: $HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default: $PORT or 8000)")

    d = sub.add_parser("demo", help="build the demo bundles (iris-classifier, sales-regressor)")
    d.add_argument("--out", type=Path, required=True)

    f = sub.add_parser("fetch", help="download a bundle archive, check its sha256, unpack it")
    f.add_argument("--url", required=True)
    f.add_argument("--sha256", required=True)
    f.add_argument("--dest", type=Path, required=True)

    a = sub.add_parser("archive", help="write the reproducible .tar.gz of a bundle (for the url source)")
    a.add_argument("bundle", type=Path)
    a.add_argument("out", type=Path)

    args = parser.parse_args(argv)
    try:
        handler = {
            "package": _package,
            "validate": _validate,
            "serve": _serve,
            "demo": _demo,
            "fetch": _fetch,
            "archive": _archive,
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
    logs.configure(settings.log_level)
    logging.getLogger("model_server").info(
        "starting",
        extra={
            "version": __version__,
            "bundle": str(settings.model_bundle),
            "host": settings.host,
            "port": settings.port,
        },
    )
    return serve(settings)


def _demo(args: argparse.Namespace) -> int:
    from .demo import build_demo

    for path in build_demo(args.out):
        print(f"wrote {path}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .bundle.fetch import fetch

    dest = fetch(args.url, args.sha256, args.dest)
    print(f"unpacked {args.url} into {dest}")
    return 0


def _archive(args: argparse.Namespace) -> int:
    from .bundle.fetch import archive

    print(f"wrote {archive(args.bundle, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
