"""Test fixtures: a real PostgreSQL, a fresh database per run, apps wired to it.

PostgreSQL is the server at TEST_DATABASE_URL when set, otherwise an embedded one (pgserver)
started for this run. Either way the run gets its own database, migrated with Alembic.
"""

import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from pipeline_service.db.engine import libpq_url
from tests.fixtures.database import checking_connection, fresh_database
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.services import ClientFactory, SharedApps, app_client, model_transport


class _ProcessGuard:
    """A test that starts a process (uvicorn, PostgreSQL, wrk...), itself or through a fixture
    of any scope, must carry the `subprocess` marker, so that `make test-fast` (which leaves
    them out) is what it says it is. The embedded PostgreSQL of the whole run is the one
    exception (`allowed`)."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self.allowed = False
        self._start = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def install(self) -> None:
        guard = self

        def start(popen: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
            item = guard.item
            if item is not None and not guard.allowed and not item.get_closest_marker("subprocess"):
                raise AssertionError(
                    f"{item.nodeid} starts a process: mark it @pytest.mark.subprocess"
                )
            return guard._start(popen, *args, **kwargs)

        subprocess.Popen._execute_child = start  # type: ignore[attr-defined]

    @contextmanager
    def allowing(self) -> Iterator[None]:
        self.allowed = True
        try:
            yield
        finally:
            self.allowed = False


PROCESS_GUARD = _ProcessGuard()


def pytest_configure(config: pytest.Config) -> None:
    PROCESS_GUARD.install()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    PROCESS_GUARD.item = item


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """libpq URL of a PostgreSQL server we may create databases on."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield libpq_url(url)
        return
    import pgserver

    with PROCESS_GUARD.allowing():
        server = pgserver.get_server(
            tempfile.mkdtemp(prefix="pipeline-tests-pg-"), cleanup_mode="delete"
        )
    try:
        yield server.get_uri()
    finally:
        with PROCESS_GUARD.allowing():
            server.cleanup()


@pytest.fixture(scope="session")
def database_url(postgres_url: str) -> Iterator[str]:
    """The database of this test run, shared by its tests."""
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture(scope="module")
def own_database_url(postgres_url: str) -> Iterator[str]:
    """A database for one module alone, for tests that count what every process connected to
    their database does (LISTEN connections, pool sizes)."""
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with checking_connection(database_url) as conn:
        yield conn


@pytest.fixture(scope="session")
async def _shared_apps(database_url: str) -> AsyncIterator[SharedApps]:
    """Pipeline service apps started once per run and per distinct settings, for the tests
    that do not need an app of their own (each start costs a lifespan and a pool)."""
    async with AsyncExitStack() as stack:
        yield SharedApps(stack, {})


@pytest.fixture
def make_client(database_url: str, _shared_apps: SharedApps) -> ClientFactory:
    """`async with make_client(model=..., **settings) as client:` a running pipeline service.

    `model` is an httpx transport to reach the model service through (default: the real
    model service in-process with its defaults); pass `model=None` with `model_service_url`
    to go over the network. With the default model, the app is shared with every other test
    that asks for the same settings; `fresh=True` starts one of its own (for tests about
    startup, shutdown or per-process state).
    """

    @asynccontextmanager
    async def factory(
        model: httpx.AsyncBaseTransport | str | None = "default",
        fresh: bool = False,
        **overrides: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        # Tests fire dozens of requests at once with asyncio.gather to exercise concurrency;
        # load shedding has tests of its own, which set the limit they test.
        overrides.setdefault("admit_image_requests", 10_000)
        settings = Settings(database_url=database_url, **{"gc_freeze": False, **overrides})
        if model == "default" and not fresh:
            yield await _shared_apps.client(settings, overrides)
            return
        transport = model_transport() if model == "default" else model
        assert not isinstance(transport, str)
        async with app_client(create_app(settings, model_transport=transport)) as client:
            yield client

    return factory


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return jpeg_bytes()
