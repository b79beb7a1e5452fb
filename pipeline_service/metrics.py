"""The pipeline service's own metrics: runs, detections, step durations, model calls, DB pool.

HTTP metrics (requests, latency) are in `service_kit.metrics`. Everything here is a few
in-memory (or, with several workers, mmap-ed file) updates per request.
"""

import time

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.errors import ModelBadResponse, ModelServiceError, ModelTimeout
from pipeline_service.pipeline.types import Box, ImagePayload, ModelClientProtocol, RunContext

PIPELINE_RUNS = Counter(
    "pipeline_runs_total",
    "Images run through a pipeline, by pipeline and outcome "
    "(succeeded, failed, rejected = the client's input).",
    ["pipeline_id", "status"],
)
DETECTIONS = Counter(
    "pipeline_detections_total", "Boxes the model found, by pipeline.", ["pipeline_id"]
)
STEP_DURATION = Histogram(
    "pipeline_step_duration_seconds",
    "Time spent in one completed pipeline step, by step type.",
    ["step"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
MODEL_LATENCY = Histogram(
    "model_request_duration_seconds",
    "Calls to the model service, failed ones included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
MODEL_ERRORS = Counter(
    "model_request_errors_total",
    "Calls to the model service without an answer, by kind (unavailable, timeout, bad_response).",
    ["kind"],
)
DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "PostgreSQL connections checked out of the pool (summed over workers).",
    multiprocess_mode="livesum",
)


class PrometheusRunObserver:
    """The engine's `RunObserver`: counts runs and boxes, times each step."""

    def run_finished(self, ctx: RunContext, status: str) -> None:
        pipeline_id = str(ctx.pipeline.id)
        PIPELINE_RUNS.labels(pipeline_id, status).inc()
        if status == "succeeded" and ctx.detections:
            DETECTIONS.labels(pipeline_id).inc(len(ctx.detections))
        for key, ms in ctx.timings_ms.items():
            STEP_DURATION.labels(key.partition("#")[0]).observe(ms / 1000)


def _error_kind(error: ModelServiceError) -> str:
    if isinstance(error, ModelTimeout):
        return "timeout"
    if isinstance(error, ModelBadResponse):
        return "bad_response"
    return "unavailable"


class MeteredModelClient:
    """Wraps the model client: latency of every call, errors by kind."""

    def __init__(self, inner: ModelClientProtocol) -> None:
        self._inner = inner

    async def detect(self, payload: ImagePayload) -> list[Box]:
        started = time.perf_counter()
        try:
            return await self._inner.detect(payload)
        except ModelServiceError as error:
            MODEL_ERRORS.labels(_error_kind(error)).inc()
            raise
        finally:
            MODEL_LATENCY.observe(time.perf_counter() - started)


def watch_pool(engine: AsyncEngine) -> None:
    """Keep `db_pool_connections_in_use` current from the pool's own checkout/checkin events."""
    pool = engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if checked_out is None:  # a pool without counting (NullPool): nothing to report
        return

    def on_checkout(*_: object) -> None:
        DB_POOL_IN_USE.set(checked_out())

    def on_checkin(*_: object) -> None:
        # Fired just before the connection is handed back, so it is still counted.
        DB_POOL_IN_USE.set(max(checked_out() - 1, 0))

    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)
