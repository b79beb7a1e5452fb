"""Test fixtures: a real PostgreSQL, a fresh database per run, apps wired to it.

PostgreSQL is the server at TEST_DATABASE_URL when set, otherwise an embedded one (pgserver)
started for this run. Either way the run gets its own database, migrated with Alembic.
"""

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
import cv2
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from model_service.app import create_app as create_model_app
from model_service.config import ModelSettings
from pipeline_service.app import create_app
from pipeline_service.config import Settings
from pipeline_service.db import migrate
from pipeline_service.db.engine import libpq_url
from tests.hardening_support import encode, photo


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """libpq URL of a PostgreSQL server we may create databases on."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield libpq_url(url)
        return
    import pgserver

    server = pgserver.get_server(
        tempfile.mkdtemp(prefix="pipeline-tests-pg-"), cleanup_mode="delete"
    )
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_url: str) -> Iterator[str]:
    """A fresh database for this test run, migrated and seeded; dropped afterwards."""
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(postgres_url, name)
    try:
        migrate.upgrade(url)
        migrate.seed(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection for checking what the service wrote."""
    conn = await asyncpg.connect(database_url)
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        yield conn
    finally:
        await conn.close()


def model_transport(**knobs: Any) -> httpx.ASGITransport:
    """The real model service app, served in-process, with the given MODEL_* knobs."""
    return httpx.ASGITransport(app=create_model_app(ModelSettings(**knobs)))


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` started (its lifespan run) and an httpx client that talks to it in-process."""
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver"
        ) as client,
    ):
        yield client


@pytest.fixture
def make_client(database_url: str) -> ClientFactory:
    """`async with make_client(model=..., **settings) as client:` a running pipeline service.

    `model` is an httpx transport to reach the model service through (default: the real
    model service in-process with its defaults); pass `model=None` with `model_service_url`
    to go over the network.
    """

    @asynccontextmanager
    async def factory(
        model: httpx.AsyncBaseTransport | str | None = "default", **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        transport = model_transport() if model == "default" else model
        assert not isinstance(transport, str)
        settings = Settings(database_url=database_url, **overrides)
        async with app_client(create_app(settings, model_transport=transport)) as client:
            yield client

    return factory


def jpeg_bytes(width: int = 320, height: int = 240, **imwrite: int) -> bytes:
    """A small synthetic photo-like JPEG (a gradient with a rectangle)."""
    params = [item for pair in imwrite.items() for item in (getattr(cv2, pair[0]), pair[1])]
    return encode(photo(width, height), ".jpg", *params)


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return jpeg_bytes()


async def count_rows(db: asyncpg.Connection) -> tuple[int, int]:
    runs = await db.fetchval("SELECT count(*) FROM processing_runs")
    detections = await db.fetchval("SELECT count(*) FROM detections")
    return runs, detections
