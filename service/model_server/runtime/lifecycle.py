"""The model runtime's lifecycle: loads the bundle in the background, drains on SIGTERM, and is the
one place every prediction goes.

Every model call from every protocol goes through ``await runtime.predict(rows, proba=...)``, which
runs the model in a worker thread (never on the event loop, so health checks and metrics stay fast
under load). That single seam is where the micro-batcher (batching.py) gathers rows from concurrent
requests into one call. ``predict_rows`` is the synchronous model call itself (predict.py), with its
metrics and observers: the batcher calls it with the gathered rows.

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
from pathlib import Path

import numpy as np
import sklearn
import skops

from .. import __version__
from ..bundle.load import LoadedBundle, load_bundle
from ..bundle.metadata import sample_record
from ..errors import BundleError, InvalidInput, NotFound, NotReady, cut
from ..features import InputSchema, Rows
from ..metrics import Metrics
from ..settings import Settings
from ..types import Metadata, Prediction
from .array_input import array_input_equivalent, silence_names_warning
from .batching import MicroBatcher
from .observers import build_observers
from .predict import ModelCall

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


class ModelRuntime:
    def __init__(self, settings: Settings, metrics: Metrics, bundle_path: Path | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.bundle_path = bundle_path if bundle_path is not None else settings.model_bundle
        self.state = State.LOADING
        self.reason = "the model is loading"
        self.bundle: LoadedBundle | None = None
        self.schema: InputSchema | None = None
        self._model: ModelCall | None = None  # set once loaded and warmed up
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
                inline_max=settings.inline_predict_max_ms / 1000,
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

    @property
    def array_input(self) -> bool:
        """True when a DataFrame-fitted model is called with arrays (array_input.py)."""
        return self._model is not None and self._model.array_input

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
            schema = InputSchema.for_model(meta, self.settings.max_request_rows)
            self.schema = schema
            self.bundle = bundle
            self._warm_up(ModelCall(bundle.estimator, schema, self.metrics), meta)
            array_input = self.settings.array_input and array_input_equivalent(
                bundle.estimator, schema, meta.reference, meta.has_predict_proba
            )
            if array_input:
                silence_names_warning()
            self._model = ModelCall(
                bundle.estimator,
                schema,
                self.metrics,
                array_input=array_input,
                observers=build_observers(bundle, self.settings, self.metrics),
            )
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
                    "model_input": "array" if self.array_input else meta.input_kind,
                    "path": str(self.bundle_path),
                },
            )
        finally:
            gc.enable()  # paused for startup by `model-server serve`; a no-op otherwise
            # Set last, so whoever waits (validate, tests) sees the final state.
            self._loaded.set()

    def _warm_up(self, model: ModelCall, meta: Metadata) -> None:
        try:
            rows = model.schema.from_records([sample_record(meta)])
            model(rows, meta.has_predict_proba, record=False)
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
        self._model = None
        self.metrics.model_ready.set(0)

    # ---- predictions ---------------------------------------------------------------------------

    def served_model(self, name: str | None = None, version: str | None = None) -> Metadata:
        """The served model's metadata for a request that names a model (and version): NotReady while
        not loaded, NotFound for another name or version. Every transport asks this."""
        bundle = self.bundle
        if bundle is None or self.state not in (State.READY, State.DRAINING):
            raise NotReady(f"the model is not ready: {self.reason}")
        meta = bundle.metadata
        if name is not None and name != meta.name:
            raise NotFound(f"model '{cut(name)}' is not served here: this server serves '{meta.name}'")
        if version is not None and version != meta.version:
            raise NotFound(
                f"model '{meta.name}' has no version '{cut(version)}': this server serves {meta.version}"
            )
        return meta

    def admits(self, in_flight: int) -> bool:
        """Whether one more request can be taken, asked before its body is read.

        With micro-batching, every request in flight that has not reached the batch queue yet (its
        body being read and decoded) will want a place in it: a request admitted now whose rows then
        find the queue full is refused only after the server has read and decoded it, and under
        heavy overload that wasted work is what starves the model (docs/performance.md, overload).
        So it is refused now if the queue, plus the usual rows of each request ahead of it that is
        not queued yet, leaves no room for it or would keep it waiting past MAX_QUEUE_WAIT_MS."""
        batcher = self._batcher
        if batcher is None:
            return True
        ahead = max(0, in_flight - batcher.queued_requests)
        return batcher.has_room(ahead, self.settings.max_queue_wait_ms / 1000)

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
        model = self._model
        if model is None:
            raise NotReady(f"the model is not ready: {self.reason}")
        return model(rows, proba)
