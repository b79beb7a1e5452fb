"""PostgreSQL stopped and started while the service runs: 503 in between, then it recovers by
itself. Uses an embedded PostgreSQL of its own (never the shared server)."""

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from pipeline_service.db import migrate
from tests.fixtures.images import unique_jpeg
from tests.fixtures.services import app_client, model_transport

pytestmark = pytest.mark.subprocess


class OwnPostgres:
    """A pgserver instance we may stop and start with pg_ctl; same socket, same URL."""

    def __init__(self) -> None:
        import pgserver

        self.server = pgserver.get_server(
            Path(tempfile.mkdtemp(prefix="hardening-pg-")), cleanup_mode="delete"
        )
        self.url = self.server.get_uri()
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.server.log),
            "start",
        )

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    postgres = OwnPostgres()
    try:
        migrate.upgrade(postgres.url)
        migrate.seed(postgres.url)
        yield postgres
    finally:
        postgres.cleanup()


async def process(client: httpx.AsyncClient, seed: int) -> httpx.Response:
    return await client.post("/process_image?pipeline_id=1", files={"image": unique_jpeg(seed)})


@asynccontextmanager
async def service_on(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    # concurrent requests here are about the pool, not load shedding (tested on its own)
    settings.setdefault("admit_image_requests", 10_000)
    app = create_app(
        Settings(database_url=database_url, **settings), model_transport=model_transport()
    )
    async with app_client(app) as client:
        yield client


async def test_database_restart_gives_503_then_recovers_without_a_restart(
    own_postgres: OwnPostgres,
) -> None:
    answers: list[httpx.Response] = []
    async with service_on(own_postgres.url) as client:
        before = await process(client, 1)
        assert before.status_code == 200, before.text

        await asyncio.to_thread(own_postgres.stop)
        for seed in range(2, 6):  # both the pipeline lookup and the save meet a dead database
            down = await process(client, seed)
            assert down.status_code == 503, down.text
            assert down.headers["content-type"] == "application/problem+json"
            body = down.json()
            assert body["type"] == "/problems/database-unavailable"
            assert "database" in body["detail"] and "try again" in body["detail"]
            assert "run_id" not in body  # the failed run could not be recorded either
            assert down.headers["Retry-After"] == "1"

        await asyncio.to_thread(own_postgres.start)
        deadline = time.monotonic() + 30  # a bound on the wait, not a speed requirement
        seed = 100
        while time.monotonic() < deadline:
            seed += 1
            response = await process(client, seed)
            answers.append(response)
            if response.status_code == 200:
                break
            assert response.status_code == 503, response.text
            await asyncio.sleep(0.2)
        assert answers[-1].status_code == 200, "the service did not recover by itself"
        after = [await process(client, 1000 + i) for i in range(3)]
        assert [a.status_code for a in after] == [200] * 3

    conn = await asyncpg.connect(own_postgres.url)
    try:
        stored = await conn.fetch("SELECT id, status FROM processing_runs ORDER BY id")
    finally:
        await conn.close()
    succeeded = [before, answers[-1], *after]
    assert [(r["id"], r["status"]) for r in stored] == [
        (a.json()["run_id"], "succeeded") for a in succeeded
    ]


@pytest.mark.parametrize("pre_ping", [None, True], ids=["default", "pool_pre_ping"])
async def test_a_database_restarted_between_requests_costs_no_request(
    own_postgres: OwnPostgres, pre_ping: bool | None
) -> None:
    """Every pooled connection died with the old server. They are all replaced before use:
    by the local check of a closed connection (always on), or by the ping (when on)."""
    settings = {} if pre_ping is None else {"db_pool_pre_ping": pre_ping}
    async with service_on(own_postgres.url, **settings) as client:
        # Several requests at once, so that the pool holds several connections.
        warm = await asyncio.gather(*(process(client, seed) for seed in range(1, 7)))
        assert [a.status_code for a in warm] == [200] * 6, [a.text for a in warm]

        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)
        after = await asyncio.gather(*(process(client, seed) for seed in range(10, 16)))
        assert [a.status_code for a in after] == [200] * 6, [a.text for a in after]

    conn = await asyncpg.connect(own_postgres.url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM processing_runs")
    finally:
        await conn.close()
    assert stored == 12
