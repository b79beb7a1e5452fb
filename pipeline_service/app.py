"""The pipeline service's FastAPI application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from pipeline_service.api import health, pipelines, preview, process, results, steps
from pipeline_service.api.admission import AdmitImageRequests
from pipeline_service.api.body_timeout import BodyTimeout
from pipeline_service.api.problems import install_pipeline_problem_handlers
from pipeline_service.api.request_checks import RequestChecks
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
from service_kit.security_headers import SecurityHeaders

# What a browser page on an allowed origin may send and read (CORS_ALLOW_ORIGINS).
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed"]


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
    # Starlette runs the middleware added last first: the list below is from inside out.
    app.add_middleware(BodyTimeout, timeout_s=settings.request_body_timeout_s)
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestChecks, max_header_bytes=settings.max_header_bytes)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    # logs and counts even a refused upload
    app.add_middleware(ObserveRequests, replica_name=settings.replica_name)
    app.add_middleware(SecurityHeaders)  # on every answer, a 500 included
    # Outermost: a refusal under overload must cost next to nothing (api/admission.py).
    app.add_middleware(
        AdmitImageRequests,
        limit=settings.admit_image_requests,
        replica_name=settings.replica_name,
    )
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
