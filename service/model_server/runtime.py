"""The model runtime: loads the bundle in the background, and is the one place every prediction goes.

Every model call from every protocol goes through ``await runtime.predict(rows, proba=...)``, which
runs the model in a worker thread (never on the event loop, so health checks and metrics stay fast
under load). That single seam is where the micro-batcher (batching.py) gathers rows from concurrent
requests into one call. ``predict_rows`` is the synchronous model call itself, with its metrics and
observers: the batcher calls it with the gathered rows.

No web framework here: the HTTP layer maps the typed errors this module raises to responses.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops

from . import __version__
from .array_input import array_input_equivalent, silence_names_warning
from .batching import MicroBatcher
from .bundle import LoadedBundle, load_bundle, sample_record
from .errors import BundleError, InvalidInput, ModelFailed, NotReady
from .features import InputSchema, Rows
from .metrics import Metrics
from .observers import Observer, build_observers
from .settings import Settings

log = logging.getLogger("model_server.runtime")

# Model calls run in this many threads: numpy/scikit-learn release the GIL in their inner loops, so a
# few threads use a multi-core pod; more would only contend (MAX_IN_FLIGHT bounds the queue).
MODEL_THREADS = max(1, min(4, len(os.sched_getaffinity(0))))


class State(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Prediction:
    """Model output for a batch of rows: labels or values, and class probabilities when asked for."""

    predictions: np.ndarray
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    def split(self, start: int, stop: int, keep_proba: bool = True) -> Prediction:
        """Rows [start, stop) of a batched result (probabilities only for a request that asked)."""
        proba = self.probabilities[start:stop] if keep_proba and self.probabilities is not None else None
        return Prediction(self.predictions[start:stop], proba)


class ModelRuntime:
    def __init__(self, settings: Settings, metrics: Metrics, bundle_path: Path | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.bundle_path = bundle_path if bundle_path is not None else settings.model_bundle
        self.state = State.LOADING
        self.reason = "the model is loading"
        self.bundle: LoadedBundle | None = None
        self.schema: InputSchema | None = None
        self._observers: list[Observer] = []
        self._array_input = False  # set at load: array_input.py
        self._executor = ThreadPoolExecutor(MODEL_THREADS, thread_name_prefix="model")
        # BATCHING=on: rows of concurrent requests share model calls (batching.py), one batch per thread.
        self._batcher: MicroBatcher[Prediction] | None = None
        if settings.batching:
            self._batcher = MicroBatcher(
                self.predict_rows,
                Prediction.split,
                max_rows=settings.batch_max_rows,
                max_wait=settings.batch_max_wait_ms / 1000,
                queue_rows=settings.batch_queue_rows,
                concurrency=MODEL_THREADS,
                executor=self._executor,
                metrics=metrics,
            )
        self._loader: threading.Thread | None = None
        self._loaded = threading.Event()
        metrics.model_ready.set(0)

    # ---- lifecycle -----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    def start_loading(self) -> None:
        """Load in a background thread, so the port answers /healthz while a large model loads."""
        self._loader = threading.Thread(target=self.load, name="model-loader", daemon=True)
        self._loader.start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def load(self) -> None:
        """Verify, deserialise and warm up the bundle; on failure stay FAILED with the reason."""
        start = time.perf_counter()
        try:
            if self.bundle_path is None:
                raise BundleError("no bundle given: set MODEL_BUNDLE or pass the bundle directory to serve")
            bundle = load_bundle(self.bundle_path, self.settings)
            meta = bundle.metadata
            self.schema = meta.input_schema(self.settings.max_request_rows)
            self.bundle = bundle
            self._warm_up()
            if self.settings.array_input and array_input_equivalent(
                bundle.estimator, self.schema, meta.reference, meta.has_predict_proba
            ):
                silence_names_warning()
                self._array_input = True
            self._observers = build_observers(bundle, self.settings, self.metrics)
            # Everything loaded so far (scikit-learn, pandas, scipy, the model) lives as long as the
            # process: freeze it out of the cyclic collector, whose full passes over those ~10^6 objects
            # stalled every request for 50-150 ms under load (make bench, linear model at 64
            # connections: p99 130 -> 20 ms, mean latency halved). No full collection first: it took
            # 0.2 s of the demo's 1.6 s start to reclaim ~1,000 cyclic garbage objects (well under 1 MiB)
            # left by the imports, which now stay frozen once.
            gc.freeze()
            elapsed = time.perf_counter() - start
            self.metrics.model_load_duration.set(elapsed)
            self.metrics.model_info.labels(
                bundle_name=meta.name,
                bundle_version=meta.version,
                task=meta.task,
                sklearn_version=sklearn.__version__,
                skops_version=skops.__version__,
                numpy_version=np.__version__,
                server_version=__version__,
            ).set(1)
        except BundleError as e:
            self._fail(str(e))
        except Exception as e:  # anything else must not kill the loader and leave "loading" forever
            log.exception("model load failed")
            self._fail(f"{type(e).__name__}: {e}")
        else:
            if self.state is State.LOADING:  # SIGTERM may have arrived while loading
                self.state = State.READY
                self.reason = "ready"
                self.metrics.model_ready.set(1)
            log.info(
                "model ready",
                extra={
                    "model": meta.name,
                    "model_version": meta.version,
                    "load_seconds": round(elapsed, 3),
                    # "array" when a DataFrame-fitted model is called with arrays (array_input.py).
                    "model_input": "array" if self._array_input else meta.input_kind,
                    "path": str(self.bundle_path),
                },
            )
        finally:
            gc.enable()  # paused for startup by `model-server serve`; a no-op otherwise
            # Set last, so whoever waits (validate, tests) sees the final state.
            self._loaded.set()

    def _warm_up(self) -> None:
        assert self.bundle is not None and self.schema is not None
        meta = self.bundle.metadata
        try:
            rows = self.schema.from_records([sample_record(meta)])
            self._call(rows, meta.has_predict_proba, record=False)
        except Exception as e:  # a model that cannot predict one typical row must not become ready
            raise BundleError(f"the warm-up prediction failed: {type(e).__name__}: {e}") from e

    def _fail(self, reason: str) -> None:
        self.state = State.FAILED
        self.reason = reason
        self.metrics.model_ready.set(0)
        log.error("model not loaded: %s", reason, extra={"path": str(self.bundle_path)})

    def begin_drain(self) -> None:
        """SIGTERM: stop reporting ready at once; requests already accepted still finish."""
        if self.state in (State.READY, State.LOADING):
            self.state = State.DRAINING
            self.reason = "the server is shutting down"
        self.metrics.model_ready.set(0)

    def close(self) -> None:
        """Release the model and the worker threads once the last request is answered."""
        if self._batcher is not None:
            self._batcher.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.state = State.STOPPED
        self.reason = "the server has stopped"
        self.bundle = None
        self._observers = []
        self.metrics.model_ready.set(0)

    # ---- predictions ---------------------------------------------------------------------------

    def require_schema(self) -> InputSchema:
        """The input schema, or NotReady: codecs need it before a request can be decoded."""
        if self.schema is None or self.state not in (State.READY, State.DRAINING):
            raise NotReady(f"the model is not ready: {self.reason}")
        return self.schema

    async def predict(self, rows: Rows, *, proba: bool) -> Prediction:
        """The one coroutine every prediction goes through: runs the model off the event loop."""
        if self.state not in (State.READY, State.DRAINING) or self.bundle is None:
            raise NotReady(f"the model is not ready: {self.reason}")
        if proba and not self.bundle.metadata.has_predict_proba:
            kind = "regressor" if self.bundle.metadata.task == "regressor" else "classifier"
            raise InvalidInput(
                f"this {kind} has no class probabilities (no predict_proba): do not ask for them"
            )
        self.metrics.request_rows.observe(len(rows))
        if self._batcher is not None:
            return await self._batcher.submit(rows, proba=proba)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.predict_rows, rows, proba)

    def predict_rows(self, rows: Rows, proba: bool) -> Prediction:
        """The model call itself, in a worker thread: metrics, then observers, then the result."""
        return self._call(rows, proba, record=True)

    def _call(self, rows: Rows, proba: bool, *, record: bool) -> Prediction:
        # record=False for the warm-up: a cold first call is not traffic and must not skew the metrics.
        bundle = self.bundle
        if bundle is None:
            raise NotReady(f"the model is not ready: {self.reason}")
        est: Any = bundle.estimator
        m = self.metrics
        try:
            t0 = time.perf_counter()
            if self._array_input and isinstance(rows, np.ndarray):
                X = rows
            else:
                X = self.schema.model_input(rows) if self.schema is not None else rows
            preds = np.asarray(est.predict(X))
            t1 = time.perf_counter()
            probabilities = None
            if proba:
                probabilities = np.asarray(est.predict_proba(X), dtype=np.float64)
            t2 = time.perf_counter()
        except (ValueError, TypeError) as e:
            # Input passed the schema but the model's own checks refused it (e.g. an unknown
            # category for a OneHotEncoder with handle_unknown="error"): the client can fix that.
            raise InvalidInput(f"the model rejected the input: {e}") from None
        except Exception as e:
            log.exception("model call failed")
            raise ModelFailed(
                f"the model failed on this input ({type(e).__name__}); see the server log"
            ) from e
        if record:
            m.inference_duration.labels(method="predict").observe(t1 - t0)
            if proba:
                m.inference_duration.labels(method="predict_proba").observe(t2 - t1)
            m.batch_rows.observe(len(rows))
            for observer in self._observers:
                try:
                    observer.observe(rows, preds)
                except Exception:  # monitoring must never fail a prediction
                    log.exception("observer %s failed", type(observer).__name__)
        return Prediction(preds, probabilities)
