"""Everything a running process holds: DB engine, pipeline cache + listener, model client,
the CPU thread pool, and the services and repositories the routes use (built here, once per
process in the app's lifespan, never by a route)."""

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import cv2
import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.background import PeriodicJob, run_periodically
from pipeline_service.circuit_breaker import CircuitBreaker
from pipeline_service.config import Settings
from pipeline_service.db.change_listener import PipelineChangeListener
from pipeline_service.db.engine import create_engine, create_unpooled_engine, libpq_url
from pipeline_service.db.idempotency import IdempotencyRepository
from pipeline_service.db.partitions import RunPartitions
from pipeline_service.db.pipeline_store import PipelineStore
from pipeline_service.db.results import ResultsRepository
from pipeline_service.db.runs import RunRepository
from pipeline_service.idempotency import PURGE_EVERY_S, IdempotentRequests, purge_expired_keys
from pipeline_service.metrics import MeteredModelClient, PrometheusRunObserver, watch_pool
from pipeline_service.model_client import ModelClient
from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.cache import PipelineCache
from pipeline_service.pipeline.formats.header import DecodeLimits
from pipeline_service.pipeline.types import RunServices
from pipeline_service.pipelines import PipelineService
from pipeline_service.processing import ImageProcessing
from pipeline_service.readiness import Readiness

MAINTENANCE_APPLICATION_NAME = "pipeline-maintenance"  # in pg_stat_activity


def lower_this_threads_priority(nice: int) -> None:
    """Run the calling thread (an image thread) at a lower CPU priority than the event loop.

    When the cores are busy, the image work then waits for the event loop instead of the
    other way round: health probes, refusals of excess requests, model calls and run writes
    keep their latency, and the image work still gets every cycle the loop leaves (the
    scheduler gives an idle core to whoever is runnable). Linux sets nice per thread."""
    if nice:
        with contextlib.suppress(OSError):  # not allowed, or not Linux: run at the default
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


@dataclass
class Runtime:
    settings: Settings
    db: AsyncEngine
    pipelines: PipelineCache
    services: RunServices
    cpu_pool: ThreadPoolExecutor
    model: ModelClient
    idempotency: IdempotentRequests
    processing: ImageProcessing
    pipeline_service: PipelineService
    results: ResultsRepository
    readiness: Readiness


@asynccontextmanager
async def open_runtime(
    settings: Settings, model_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    db = create_engine(
        settings.database_url,
        settings.db_pool_size,
        settings.db_pool_pre_ping,
        max_overflow=settings.max_overflow,
        transaction_pooler=settings.db_transaction_pooler,
    )
    watch_pool(db)
    limits = PipelineLimits(settings.max_image_pixels, settings.pipeline_memory_budget_bytes)
    store = PipelineStore(db)
    cache = PipelineCache(store.load_active, limits)
    listener = PipelineChangeListener(
        libpq_url(settings.listen_url), cache.invalidate, cache.set_listening
    )
    model = ModelClient(
        settings.model_service_url,
        settings.model_timeout_s,
        settings.model_connect_retries,
        transport=model_transport,
        retry_backoff_s=settings.model_retry_backoff_s,
        breaker=CircuitBreaker(settings.model_breaker_failures, settings.model_breaker_reset_s),
    )
    cv2.setNumThreads(settings.opencv_threads)
    cpu_pool = ThreadPoolExecutor(
        settings.cpu_threads,
        thread_name_prefix="image",
        initializer=lower_this_threads_priority,
        initargs=(settings.image_thread_nice,),
    )
    runs = RunRepository(db)
    services = RunServices(
        MeteredModelClient(model),
        runs,
        DecodeLimits(
            settings.max_image_pixels,
            settings.max_pixels_per_byte,
            settings.pixels_per_byte_from,
            settings.max_jpeg_scans,
        ),
        PrometheusRunObserver(),
    )
    results = ResultsRepository(db)
    idempotency = IdempotentRequests(IdempotencyRepository(db), results, settings.idempotency_ttl_s)
    readiness = Readiness(
        libpq_url(settings.database_url),
        settings.model_service_url,
        settings.readiness_timeout_s,
        # Its checks run on an event loop of their own: an in-process (ASGI) transport can be
        # shared, a network one cannot (its connections belong to the loop that opened them).
        model_transport if isinstance(model_transport, httpx.ASGITransport) else None,
        settings.db_transaction_pooler,
        settings.readiness_interval_s,
    )
    # Background work keeps off the request pool: the listener and readiness hold a connection
    # of their own; the background jobs, one at a time, open one each time they run.
    maintenance_db = create_unpooled_engine(
        settings.database_url, MAINTENANCE_APPLICATION_NAME, settings.db_transaction_pooler
    )
    await listener.start()
    partitions = RunPartitions(
        maintenance_db, settings.run_partitions_ahead_days, settings.results_retention_days
    )
    keys = IdempotencyRepository(maintenance_db)
    background = asyncio.create_task(
        run_periodically(
            [
                PeriodicJob(
                    "partition maintenance", settings.partition_maintenance_s, partitions.maintain
                ),
                PeriodicJob("idempotency purge", PURGE_EVERY_S, lambda: purge_expired_keys(keys)),
            ]
        ),
        name="background-jobs",
    )
    try:
        yield Runtime(
            settings=settings,
            db=db,
            pipelines=cache,
            services=services,
            cpu_pool=cpu_pool,
            model=model,
            idempotency=idempotency,
            processing=ImageProcessing(cache, services, cpu_pool, idempotency),
            pipeline_service=PipelineService(store, cache.invalidate, limits),
            results=results,
            readiness=readiness,
        )
    finally:
        background.cancel()
        await runs.drain(settings.shutdown_drain_s)  # runs still being written get finished
        await listener.stop()
        await model.aclose()
        await readiness.aclose()
        cpu_pool.shutdown(wait=True)
        await maintenance_db.dispose()
        await db.dispose()
