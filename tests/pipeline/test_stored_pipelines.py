"""Pipelines are data: broken definitions fail clearly, and changes apply without a restart."""

import asyncio
import uuid

import asyncpg
import pytest

from tests.fixtures.pipelines import listener_pids
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory, model_transport


async def create_pipeline(db: asyncpg.Connection, steps: list[tuple[str, dict]]) -> int:
    async with db.transaction():
        pipeline_id = await db.fetchval(
            "INSERT INTO pipelines (name) VALUES ($1) RETURNING id", f"test-{uuid.uuid4().hex[:8]}"
        )
        await db.executemany(
            "INSERT INTO pipeline_steps (pipeline_id, position, type, params) "
            "VALUES ($1, $2, $3, $4)",
            [(pipeline_id, i, kind, params) for i, (kind, params) in enumerate(steps)],
        )
    return pipeline_id


CAR = [
    ("decode", {}),
    ("resize", {"width": 64, "height": 64}),
    ("normalize", {}),
    ("base64", {}),
    ("detect", {}),
    ("save", {}),
]


@pytest.mark.parametrize(
    ("steps", "index", "words"),
    [
        ([("decode", {}), ("sharpen", {}), *CAR[2:]], 1, ["unknown step type", "sharpen"]),
        ([("decode", {}), ("resize", {"width": 0}), *CAR[2:]], 1, ["width", "greater than"]),
        ([("decode", {}), ("resize", {"colour": "red"}), *CAR[2:]], 1, ["colour"]),
        ([("resize", {}), ("decode", {}), *CAR[2:]], 0, ["needs image", "encoded image bytes"]),
        ([*CAR[:3], ("detect", {}), ("save", {})], 3, ["base64 payload"]),
        ([*CAR[:4], ("save", {})], 4, ["needs detections"]),
    ],
)
async def test_broken_stored_pipeline_is_422_naming_pipeline_and_step(
    make_client: ClientFactory, jpeg, db, steps, index: int, words: list[str]
) -> None:
    pipeline_id = await create_pipeline(db, steps)
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post(
            f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg}
        )
    assert response.status_code == 422, response.text
    body = response.json()
    assert f"Pipeline {pipeline_id}" in body["detail"]
    assert f"step {index} ({steps[index][0]})" in body["detail"]
    assert any(e["index"] == index for e in body["errors"])
    for word in words:
        assert word in body["detail"], body["detail"]
    assert await count_rows(db) == before


async def test_pipeline_without_steps_is_422(make_client: ClientFactory, jpeg, db) -> None:
    pipeline_id = await create_pipeline(db, [])
    async with make_client() as client:
        response = await client.post(
            f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg}
        )
    assert response.status_code == 422
    assert "at least one step" in response.json()["detail"]


async def test_pipeline_without_save_stores_nothing(make_client: ClientFactory, jpeg, db) -> None:
    pipeline_id = await create_pipeline(db, CAR[:5])
    before = await count_rows(db)
    async with make_client(model=model_transport(detection_probability=1.0)) as client:
        response = await client.post(
            f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run_id"] is None and body["car_detected"] is True
    assert await count_rows(db) == before


async def poll(client, pipeline_id: int, jpeg: bytes, until) -> dict:
    """Send requests until `until(answer)` holds; a change must apply within a few seconds."""
    for _ in range(50):
        response = await client.post(
            f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg}
        )
        if until(response):
            return response
        await asyncio.sleep(0.1)
    raise AssertionError(f"change not seen: last answer {response.status_code} {response.text}")


async def test_direct_database_edits_apply_without_restart(
    make_client: ClientFactory, jpeg, db
) -> None:
    pipeline_id = await create_pipeline(db, CAR)
    async with make_client() as client:
        first = await client.post(
            f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg}
        )
        assert first.json()["pipeline_version"] == 1

        await db.execute("UPDATE pipelines SET version = 2 WHERE id = $1", pipeline_id)
        await poll(client, pipeline_id, jpeg, lambda r: r.json().get("pipeline_version") == 2)

        await db.execute(
            "UPDATE pipeline_steps SET type = 'sharpen' WHERE pipeline_id = $1 AND position = 2",
            pipeline_id,
        )
        await poll(client, pipeline_id, jpeg, lambda r: r.status_code == 422)

        await db.execute("UPDATE pipelines SET is_active = false WHERE id = $1", pipeline_id)
        await poll(client, pipeline_id, jpeg, lambda r: r.status_code == 404)


async def test_new_pipeline_is_found_after_a_404_was_cached(
    make_client: ClientFactory, jpeg, db
) -> None:
    next_id = await db.fetchval("SELECT max(id) + 1 FROM pipelines")
    async with make_client() as client:
        missing = await client.post(f"/process_image?pipeline_id={next_id}", files={"image": jpeg})
        assert missing.status_code == 404
        created = await create_pipeline(db, CAR)
        assert created == next_id
        await poll(client, created, jpeg, lambda r: r.status_code == 200)


async def test_cache_recovers_when_the_listener_connection_is_killed(
    make_client: ClientFactory, jpeg, db
) -> None:
    pipeline_id = await create_pipeline(db, CAR)
    async with make_client() as client:
        assert (
            await client.post(f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg})
        ).status_code == 200
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid = ANY($1::int[])",
            list(await listener_pids(db)),
        )
        assert killed >= 1
        await db.execute("UPDATE pipelines SET version = 5 WHERE id = $1", pipeline_id)
        await poll(client, pipeline_id, jpeg, lambda r: r.json().get("pipeline_version") == 5)
        # and once the listener is back, later changes are still seen
        await asyncio.sleep(2.5)
        await db.execute("UPDATE pipelines SET version = 6 WHERE id = $1", pipeline_id)
        await poll(client, pipeline_id, jpeg, lambda r: r.json().get("pipeline_version") == 6)
