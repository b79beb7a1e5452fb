"""The pipeline service's FastAPI application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from pipeline_service.api import health, pipelines, preview, process, results, steps
from pipeline_service.api.problems import install_pipeline_problem_handlers
from pipeline_service.api.upload_limit import UploadLimit
from pipeline_service.config import Settings, get_settings
from pipeline_service.runtime import open_runtime
from service_kit import ops_routes
from service_kit.docs import serve_docs
from service_kit.gc_freeze import startup_objects_frozen
from service_kit.logs import configure_logging
from service_kit.metrics import forget_this_process
from service_kit.openapi import finish_openapi
from service_kit.requests import ObserveRequests


def create_app(
    settings: Settings | None = None, model_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, model_transport) as runtime:
            app.state.runtime = runtime
            try:
                with startup_objects_frozen(settings.gc_freeze):
                    yield
            finally:
                forget_this_process()

    app = FastAPI(
        title="Image pipeline service",
        description="Runs an uploaded image through a pipeline stored in PostgreSQL.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by serve_docs, without a CDN
        redoc_url=None,
    )
    install_pipeline_problem_handlers(app)
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(ObserveRequests)  # outermost: logs and counts even a refused upload
    app.include_router(process.router)
    app.include_router(steps.router)
    app.include_router(preview.router)
    app.include_router(pipelines.router)
    app.include_router(results.router)
    app.include_router(health.router)
    app.include_router(ops_routes.router)
    serve_docs(app)
    finish_openapi(app)
    return app
