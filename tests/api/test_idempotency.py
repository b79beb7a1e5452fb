"""Idempotency-Key: a retry answers the first run and writes nothing, even when simultaneous."""

import asyncio
import hashlib
import uuid

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import create_async_engine

from pipeline_service.app import create_app
from pipeline_service.config import Settings, asyncpg_url
from pipeline_service.db.idempotency import IdempotencyRepository
from tests.fixtures.images import unique_jpeg
from tests.fixtures.pipelines import eventually
from tests.fixtures.problems import assert_actionable_problem
from tests.fixtures.runs import count_rows, new_pipeline
from tests.fixtures.services import ClientFactory, model_transport

REPLAYED = "Idempotent-Replayed"


def new_key() -> str:
    return str(uuid.uuid4())


async def post(client, image: bytes, key: str | None, pipeline_id: int = 1):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(
        "/process_image",
        params={"pipeline_id": pipeline_id},
        files={"image": ("a.jpg", image, "image/jpeg")},
        headers=headers,
    )


async def test_same_key_returns_the_first_run_and_writes_nothing(
    make_client: ClientFactory, db
) -> None:
    image, key = unique_jpeg(101), new_key()
    async with make_client(model=model_transport(detection_probability=1.0)) as client:
        first = await post(client, image, key)
        assert first.status_code == 200, first.text
        after_first = await count_rows(db)
        again = [await post(client, image, key) for _ in range(3)]
    assert await count_rows(db) == after_first
    for response in again:
        assert response.status_code == 200
        assert response.headers[REPLAYED] == "true"
        body, original = response.json(), first.json()
        assert body["run_id"] == original["run_id"]
        for field in ("pipeline_id", "pipeline_version", "car_detected", "box", "detections"):
            assert body[field] == original[field]
        assert body["image"] == original["image"]
        # the stored timings are those of the steps before save
        assert body["timings_ms"] == {
            k: v for k, v in original["timings_ms"].items() if k != "save"
        }
    assert REPLAYED not in first.headers
    row = await db.fetchrow("SELECT * FROM idempotency_keys WHERE key = $1", key)
    assert row["run_id"] == first.json()["run_id"] and row["pipeline_id"] == 1
    image_sha = hashlib.sha256(image).hexdigest()
    assert row["request_sha256"] == hashlib.sha256(f"1:{image_sha}".encode()).hexdigest()
    assert (row["expires_at"] - row["created_at"]).total_seconds() == 86_400


async def test_simultaneous_requests_with_one_key_store_one_run(
    make_client: ClientFactory, db
) -> None:
    image, key = unique_jpeg(102), new_key()
    before = await count_rows(db)
    # latency keeps all of them inside the pipeline at the same time
    async with make_client(model=model_transport(latency_ms=150)) as client:
        answers = await asyncio.gather(*(post(client, image, key) for _ in range(12)))
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
    run_ids = {a.json()["run_id"] for a in answers}
    assert len(run_ids) == 1
    assert sum(a.headers.get(REPLAYED) == "true" for a in answers) == 11
    runs, _ = await count_rows(db)
    assert runs == before[0] + 1
    stored = await db.fetch(
        "SELECT id FROM processing_runs WHERE image_sha256 = decode($1, 'hex')",
        hashlib.sha256(image).hexdigest(),
    )
    assert [r["id"] for r in stored] == list(run_ids)


async def test_simultaneous_different_images_with_one_key_one_wins_the_rest_409(
    make_client: ClientFactory, db
) -> None:
    key = new_key()
    images = [unique_jpeg(200 + i) for i in range(6)]
    before = await count_rows(db)
    async with make_client(model=model_transport(latency_ms=150)) as client:
        answers = await asyncio.gather(*(post(client, image, key) for image in images))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * 5, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            body = assert_actionable_problem(answer, 409)
            assert key in body["detail"] and "different image" in body["detail"]
    assert (await count_rows(db))[0] == before[0] + 1


async def test_same_key_with_a_different_image_or_pipeline_is_409(
    make_client: ClientFactory, db
) -> None:
    image, key = unique_jpeg(103), new_key()
    other_pipeline = await new_pipeline(db)
    async with make_client() as client:
        assert (await post(client, image, key)).status_code == 200
        before = await count_rows(db)
        other_image = await post(client, unique_jpeg(104), key)
        other_pipe = await post(client, image, key, pipeline_id=other_pipeline)
    body = assert_actionable_problem(other_image, 409)
    assert "different image" in body["detail"]
    body = assert_actionable_problem(other_pipe, 409)
    assert "pipeline 1" in body["detail"]
    assert await count_rows(db) == before


async def test_a_failed_attempt_does_not_bind_the_key_so_a_retry_runs_again(
    make_client: ClientFactory, db
) -> None:
    image, key = unique_jpeg(105), new_key()
    async with make_client(model=model_transport(failure_rate=1.0)) as client:
        failed = await post(client, image, key)
    assert failed.status_code == 502
    failed_run = failed.json()["run_id"]
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 0
    async with make_client() as client:
        retried = await post(client, image, key)
        replayed = await post(client, image, key)
    assert retried.status_code == 200 and REPLAYED not in retried.headers
    assert retried.json()["run_id"] != failed_run
    assert replayed.json()["run_id"] == retried.json()["run_id"]
    statuses = await db.fetch(
        "SELECT status FROM processing_runs WHERE image_sha256 = decode($1, 'hex') ORDER BY id",
        hashlib.sha256(image).hexdigest(),
    )
    assert [r["status"] for r in statuses] == ["failed", "succeeded"]


async def test_an_expired_key_is_free_again_and_purged(
    make_client: ClientFactory, db, database_url: str
) -> None:
    image, key = unique_jpeg(106), new_key()
    async with make_client(idempotency_ttl_s=60) as client:
        first = await post(client, image, key)
        row = await db.fetchrow("SELECT * FROM idempotency_keys WHERE key = $1", key)
        assert (row["expires_at"] - row["created_at"]).total_seconds() == 60
        await db.execute(
            "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1",
            key,
        )
        # expired: even a different image may use it now, and it is a new run
        reused = await post(client, unique_jpeg(107), key)
        assert reused.status_code == 200, reused.text
        assert REPLAYED not in reused.headers
        assert reused.json()["run_id"] != first.json()["run_id"]
        bound = await db.fetchval("SELECT run_id FROM idempotency_keys WHERE key = $1", key)
        assert bound == reused.json()["run_id"]

    expired_key = new_key()
    await db.execute(
        "INSERT INTO idempotency_keys (key, pipeline_id, request_sha256, run_id, expires_at) "
        "VALUES ($1, 1, 'x', $2, now() - interval '1 second')",
        expired_key,
        first.json()["run_id"],
    )
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        assert await IdempotencyRepository(engine).purge_expired() >= 1
    finally:
        await engine.dispose()
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 1
    keys = await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", expired_key)
    assert keys == 0


async def test_expired_keys_are_purged_at_start_without_a_connection_of_the_request_pool(
    make_client: ClientFactory, db, database_url: str
) -> None:
    async with make_client() as client:
        run_id = (await post(client, unique_jpeg(110), None)).json()["run_id"]
    expired_key = new_key()
    await db.execute(
        "INSERT INTO idempotency_keys (key, pipeline_id, request_sha256, run_id, expires_at) "
        "VALUES ($1, 1, 'x', $2, now() - interval '1 second')",
        expired_key,
        run_id,
    )
    app = create_app(Settings(database_url=database_url), model_transport=model_transport())
    async with LifespanManager(app):

        async def keys_left() -> int:
            return await db.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE key = $1", expired_key
            )

        assert await eventually(keys_left, lambda n: n == 0) == 0
        pool = app.state.runtime.db.sync_engine.pool
        # the purge's connection was its own: the request pool never opened one
        assert (pool.checkedin(), pool.checkedout()) == (0, 0)


@pytest.mark.parametrize(
    "key", ["", "has space", "x" * 256, "tab\there", "ключ"], ids=lambda k: repr(k[:12])
)
async def test_a_malformed_key_is_422(key: str, make_client: ClientFactory, db) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post(
            "/process_image?pipeline_id=1",
            files={"image": unique_jpeg(108)},
            headers=[("Idempotency-Key", key.encode())],
        )
    body = assert_actionable_problem(response, 422)
    assert "Idempotency-Key" in body["detail"]
    assert await count_rows(db) == before


async def test_without_a_key_every_request_is_a_new_run(make_client: ClientFactory, db) -> None:
    image = unique_jpeg(109)
    async with make_client() as client:
        a, b = await post(client, image, None), await post(client, image, None)
    assert a.json()["run_id"] != b.json()["run_id"]
