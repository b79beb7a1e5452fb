"""Everything a running process holds: DB engine, pipeline cache + listener, model client,
the CPU thread pool. Built once per process in the app's lifespan."""

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.config import Settings
from pipeline_service.db.change_listener import PipelineChangeListener
from pipeline_service.db.engine import create_engine, libpq_url
from pipeline_service.db.pipelines import PipelineRepository
from pipeline_service.db.runs import RunRepository
from pipeline_service.metrics import MeteredModelClient, PrometheusRunObserver, watch_pool
from pipeline_service.model_client import ModelClient
from pipeline_service.pipeline.cache import PipelineCache
from pipeline_service.pipeline.types import RunServices


@dataclass
class Runtime:
    settings: Settings
    db: AsyncEngine
    pipelines: PipelineCache
    services: RunServices
    cpu_pool: ThreadPoolExecutor
    model: ModelClient


@asynccontextmanager
async def open_runtime(
    settings: Settings, model_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    db = create_engine(settings.database_url, settings.db_pool_size)
    watch_pool(db)
    cache = PipelineCache(PipelineRepository(db).load_active)
    listener = PipelineChangeListener(
        libpq_url(settings.database_url), cache.invalidate, cache.set_listening
    )
    model = ModelClient(
        settings.model_service_url,
        settings.model_timeout_s,
        settings.model_connect_retries,
        transport=model_transport,
    )
    cpu_pool = ThreadPoolExecutor(settings.cpu_threads, thread_name_prefix="image")
    services = RunServices(
        MeteredModelClient(model),
        RunRepository(db),
        settings.max_image_pixels,
        PrometheusRunObserver(),
    )
    await listener.start()
    try:
        yield Runtime(settings, db, cache, services, cpu_pool, model)
    finally:
        await listener.stop()
        await model.aclose()
        cpu_pool.shutdown(wait=True)
        await db.dispose()
