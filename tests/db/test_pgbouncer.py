"""The service through a real PgBouncer in transaction mode (devstack.pgbouncer, in front of
the test PostgreSQL), with DB_TRANSACTION_POOLER and the LISTEN connection direct: concurrent
requests over few server connections, idempotent retries, reads, and a change made by hand
heard through the direct listener. Without the setting, PgBouncer breaks asyncpg's prepared
statements: the setting is what makes it work."""

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.pgbouncer import PgBouncer
from devstack.probe import accepts
from devstack.signals import SignalGate
from pipeline_service.app import create_app
from pipeline_service.config import Settings
from tests.fixtures.database import checking_connection
from tests.fixtures.fleet import require
from tests.fixtures.images import unique_jpeg
from tests.fixtures.pipelines import AUTH, TOKEN, definition, eventually, listener_pids
from tests.fixtures.processes import free_port
from tests.fixtures.services import app_client, model_transport

pytestmark = pytest.mark.subprocess

SERVER_CONNECTIONS = 2  # PgBouncer's pool: far fewer than the app's 8 + 8
REQUESTS = 48
CONCURRENCY = 16


@pytest.fixture(scope="module")
def pgbouncer_url(own_database_url: str) -> Iterator[str]:
    require("pgbouncer")
    run_dir = Path(tempfile.mkdtemp(prefix="pgbouncer-test-"))
    listen = ("127.0.0.1", free_port())
    bouncer = PgBouncer(own_database_url, listen, SERVER_CONNECTIONS, 200, run_dir, os.environ)
    bouncer.start(SignalGate())
    try:
        deadline = time.monotonic() + 30
        while not accepts(listen):
            assert bouncer.exit_code() is None, "PgBouncer exited at startup"
            assert time.monotonic() < deadline, "PgBouncer did not listen"
            time.sleep(0.05)
        yield bouncer.url
    finally:
        bouncer.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@asynccontextmanager
async def service(url: str, listen_url: str, pooler: bool) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=url,
        listen_database_url=listen_url,
        db_transaction_pooler=pooler,
        db_pool_size=8,
        admit_image_requests=CONCURRENCY,  # every request admitted: this is about the pooler
        pipeline_admin_token=TOKEN,
        gc_freeze=False,  # apps started many times in one process
    )
    app = create_app(settings, model_transport=model_transport(detection_probability=1.0))
    async with app_client(app) as client:
        yield client


async def process_many(client: httpx.AsyncClient, seed: int) -> list[httpx.Response]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> httpx.Response:
        async with gate:
            return await client.post(
                "/process_image?pipeline_id=1", files={"image": unique_jpeg(seed + index)}
            )

    return list(await asyncio.gather(*(one(i) for i in range(REQUESTS))))


async def server_connections(db: asyncpg.Connection) -> int:
    """Backends on this module's database other than this one and the LISTEN connections:
    PgBouncer's server connections."""
    return await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND application_name <> 'pipeline-change-listener'"
    )


async def test_the_service_runs_through_pgbouncer_in_transaction_mode(
    pgbouncer_url: str, own_database_url: str
) -> None:
    async with (
        service(pgbouncer_url, own_database_url, pooler=True) as client,
        checking_connection(own_database_url) as db,
    ):
        answers = await process_many(client, 70_000)
        assert [a.status_code for a in answers] == [200] * REQUESTS, answers[0].text
        run_ids = [a.json()["run_id"] for a in answers]
        stored = await db.fetch(
            "SELECT r.id, r.status, count(d.position) AS boxes FROM processing_runs r "
            "LEFT JOIN detections d ON d.run_id = r.id WHERE r.id = ANY($1) "
            "GROUP BY r.id, r.status",
            run_ids,
        )
        assert sorted((r["id"], r["status"], r["boxes"]) for r in stored) == [
            (run_id, "succeeded", 1) for run_id in sorted(run_ids)
        ]
        # 16 requests at once went through at most PgBouncer's 2 server connections.
        assert await server_connections(db) <= SERVER_CONNECTIONS

        # The idempotency path (a transaction) and a read.
        key = {"Idempotency-Key": "pgbouncer-retry-1"}
        image = {"image": unique_jpeg(70_999)}
        first = await client.post("/process_image?pipeline_id=1", files=image, headers=key)
        again = await client.post("/process_image?pipeline_id=1", files=image, headers=key)
        assert first.status_code == again.status_code == 200, first.text
        assert first.json()["run_id"] == again.json()["run_id"]
        read = await client.get(f"/results/{first.json()['run_id']}")
        assert read.status_code == 200 and read.json()["run_id"] == first.json()["run_id"]


async def test_the_listener_goes_direct_and_hears_a_change_by_hand(
    pgbouncer_url: str, own_database_url: str
) -> None:
    async with (
        service(pgbouncer_url, own_database_url, pooler=True) as client,
        checking_connection(own_database_url) as db,
    ):
        created = await client.post("/pipelines", json=definition(), headers=AUTH)
        assert created.status_code == 201, created.text
        pipeline_id = created.json()["id"]

        async def version() -> Any:
            answer = await client.post(
                f"/process_image?pipeline_id={pipeline_id}", files={"image": unique_jpeg(71_000)}
            )
            return answer.json().get("pipeline_version")

        assert await version() == 1
        assert await eventually(lambda: listener_pids(db), lambda pids: len(pids) == 1)
        await db.execute("UPDATE pipelines SET description = 'by hand' WHERE id = $1", pipeline_id)
        assert await eventually(version, lambda v: v == 2) == 2


async def test_without_the_setting_prepared_statements_break(
    pgbouncer_url: str, own_database_url: str
) -> None:
    """The control: asyncpg's and SQLAlchemy's statement caches keep named statements on
    server connections that PgBouncer then lends to other clients."""
    async with service(pgbouncer_url, own_database_url, pooler=False) as client:
        answers = await process_many(client, 72_000)
    assert any(a.status_code != 200 for a in answers)
