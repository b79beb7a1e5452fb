"""The pipeline service's FastAPI application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from pipeline_service.api import process
from pipeline_service.api.openapi_problems import document_problems
from pipeline_service.api.problems import install_problem_handlers
from pipeline_service.api.upload_limit import UploadLimit
from pipeline_service.config import Settings, get_settings
from pipeline_service.runtime import open_runtime


def create_app(
    settings: Settings | None = None, model_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, model_transport) as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="Image pipeline service",
        description="Runs an uploaded image through a pipeline stored in PostgreSQL.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    document_problems(app)
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)
    app.include_router(process.router)
    return app
