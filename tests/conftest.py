"""Test fixtures: a real PostgreSQL, a fresh database per run, apps wired to it.

PostgreSQL is the server at TEST_DATABASE_URL when set, otherwise an embedded one (pgserver)
started for this run. Either way the run gets its own database, migrated with Alembic.
"""

import asyncio
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from pipeline_service.db import migrate
from pipeline_service.db.engine import libpq_url
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.services import ClientFactory, app_client, model_transport


@pytest.fixture(autouse=True)
def _processes_only_when_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that starts a process (uvicorn, PostgreSQL, wrk...) must carry the `subprocess`
    marker, so that `make test-fast` (which leaves them out) is what it says it is."""
    if request.node.get_closest_marker("subprocess") is not None:
        return

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError(
            f"{request.node.nodeid} starts a process: mark it @pytest.mark.subprocess"
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


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
        # Tests fire dozens of requests at once with asyncio.gather to exercise concurrency;
        # load shedding has tests of its own, which set the limit they test.
        overrides.setdefault("admit_image_requests", 10_000)
        settings = Settings(database_url=database_url, **overrides)
        async with app_client(create_app(settings, model_transport=transport)) as client:
            yield client

    return factory


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return jpeg_bytes()
