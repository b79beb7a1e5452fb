"""Hot reload across processes: two pipeline service processes (uvicorn) and a model service
share the test database; a change made through one, or by hand in the database, is used by
the other on its next requests; a lost LISTEN connection is survived."""

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fixtures.database import checking_connection
from tests.fixtures.pipelines import AUTH, TOKEN, definition, eventually, listener_pids
from tests.fixtures.processes import MODEL_APP, PIPELINE_APP, Server, model_env, uvicorn_server

GRAY_STEPS = [
    {"type": "decode"},
    {"type": "grayscale"},
    {"type": "resize", "params": {"width": 64, "height": 64}},
    {"type": "base64"},
    {"type": "detect"},
    {"type": "save"},
]


pytestmark = pytest.mark.subprocess


@pytest.fixture(scope="module")
def services(
    own_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """(first, second): two pipeline service processes on one database and one model."""
    logs = tmp_path_factory.mktemp("hot-reload")
    env = {
        "DATABASE_URL": own_database_url,
        "PIPELINE_ADMIN_TOKEN": TOKEN,
        "CPU_THREADS": "1",
        "DB_POOL_SIZE": "2",
    }
    with contextlib.ExitStack() as running:
        model = running.enter_context(
            uvicorn_server(MODEL_APP, model_env(detection_probability=1.0), logs)
        )
        env["MODEL_SERVICE_URL"] = model.url
        first, second = (
            running.enter_context(uvicorn_server(PIPELINE_APP, env, logs, probe="/steps"))
            for _ in range(2)
        )
        yield first, second


@pytest.fixture
async def db(own_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    async with checking_connection(own_database_url) as conn:
        yield conn


async def process(server: Server, pipeline_id: int, jpeg: bytes) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(
            "/process_image", params={"pipeline_id": pipeline_id}, files={"image": jpeg}
        )
    return {"http_status": response.status_code, **response.json()}


async def call(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.request(method, path, headers=AUTH, **kwargs)


def version_is(version: int):
    return lambda body: body.get("pipeline_version") == version


async def test_a_change_through_one_process_is_used_by_the_other(
    services: tuple[Server, Server], jpeg: bytes, db
) -> None:
    first, second = services
    created = await call(first, "POST", "/pipelines", json=definition())
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]
    # Both processes run (and cache) version 1.
    assert (await process(second, pipeline_id, jpeg))["pipeline_version"] == 1
    assert (await process(first, pipeline_id, jpeg))["pipeline_version"] == 1

    new = definition(GRAY_STEPS, name=created.json()["name"])
    replaced = await call(first, "PUT", f"/pipelines/{pipeline_id}", json=new)
    assert replaced.status_code == 200 and replaced.json()["version"] == 2

    # The process that made the change drops its own copy before answering.
    assert (await process(first, pipeline_id, jpeg))["pipeline_version"] == 2
    # The other one hears of it through NOTIFY, with no restart.
    seen = await eventually(lambda: process(second, pipeline_id, jpeg), version_is(2))
    assert seen["pipeline_version"] == 2
    assert list(seen["timings_ms"]) == [s["type"] for s in GRAY_STEPS]
    stored = await db.fetchval(
        "SELECT pipeline_version FROM processing_runs WHERE id = $1", seen["run_id"]
    )
    assert stored == 2

    deleted = await call(second, "DELETE", f"/pipelines/{pipeline_id}")
    assert deleted.status_code == 204
    gone = await eventually(
        lambda: process(first, pipeline_id, jpeg), lambda body: body["http_status"] == 404
    )
    assert gone["http_status"] == 404


async def created_and_run_everywhere(services: tuple[Server, Server], jpeg: bytes) -> int:
    """A new pipeline, created through the first process and run at version 1 by each."""
    pipeline_id = (await call(services[0], "POST", "/pipelines", json=definition())).json()["id"]
    for server in services:
        assert (await process(server, pipeline_id, jpeg))["pipeline_version"] == 1
    return pipeline_id


async def test_an_edit_by_hand_reaches_every_process(
    services: tuple[Server, Server], jpeg: bytes, db
) -> None:
    pipeline_id = await created_and_run_everywhere(services, jpeg)
    await db.execute(
        "UPDATE pipeline_steps SET type = 'flip', params = '{}' "
        "WHERE pipeline_id = $1 AND type = 'normalize'",
        pipeline_id,
    )
    for server in services:
        seen = await eventually(lambda s=server: process(s, pipeline_id, jpeg), version_is(2))
        assert seen["pipeline_version"] == 2
        assert "flip" in seen["timings_ms"] and "normalize" not in seen["timings_ms"]


async def test_a_lost_listener_connection_is_survived(
    services: tuple[Server, Server], jpeg: bytes, db
) -> None:
    pipeline_id = await created_and_run_everywhere(services, jpeg)

    before = await listener_pids(db)
    assert len(before) == 2
    await db.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", before)
    # Changed while the listeners are gone: this NOTIFY reaches nobody.
    await db.execute(
        "UPDATE pipelines SET description = 'changed while deaf' WHERE id = $1", pipeline_id
    )
    for server in services:
        seen = await eventually(lambda s=server: process(s, pipeline_id, jpeg), version_is(2))
        assert seen["pipeline_version"] == 2

    # Both processes listen again, on new connections...
    after = await eventually(lambda: listener_pids(db), lambda pids: len(pids) == 2)
    assert len(after) == 2 and not after & before
    # ...and hear the next change.
    await db.execute("UPDATE pipelines SET description = 'and again' WHERE id = $1", pipeline_id)
    for server in services:
        seen = await eventually(lambda s=server: process(s, pipeline_id, jpeg), version_is(3))
        assert seen["pipeline_version"] == 3
