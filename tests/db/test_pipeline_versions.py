"""Versions are kept by the database (migration 0002): a change made by hand in psql or
adminer bumps the version once per transaction, stores its snapshot, is announced with
NOTIFY, and reaches a running service within seconds."""

import asyncio
from typing import Any

import asyncpg

from tests.fixtures.pipelines import create, eventually
from tests.fixtures.services import ClientFactory, model_transport

TOKEN = {"pipeline_admin_token": "test-admin-token"}


async def versions(db: asyncpg.Connection, pipeline_id: int) -> list[tuple[int, Any]]:
    rows = await db.fetch(
        "SELECT version, snapshot FROM pipeline_versions WHERE pipeline_id = $1 ORDER BY version",
        pipeline_id,
    )
    return [(r["version"], r["snapshot"]) for r in rows]


async def current(db: asyncpg.Connection, pipeline_id: int) -> tuple[int, Any]:
    row = await db.fetchrow(
        "SELECT version, pipeline_snapshot(id) AS live FROM pipelines WHERE id = $1", pipeline_id
    )
    return row["version"], row["live"]


async def new_pipeline(make_client: ClientFactory) -> int:
    async with make_client(**TOKEN) as client:
        return (await create(client))["id"]


async def test_a_psql_update_bumps_the_version_once_and_stores_the_snapshot(
    make_client: ClientFactory, db
) -> None:
    pipeline_id = await new_pipeline(make_client)
    await db.execute(
        'UPDATE pipeline_steps SET params = \'{"width": 32, "height": 32}\' '
        "WHERE pipeline_id = $1 AND type = 'resize'",
        pipeline_id,
    )
    version, live = await current(db, pipeline_id)
    history = await versions(db, pipeline_id)
    assert version == 2
    assert [v for v, _ in history] == [1, 2]
    assert history[-1][1] == live
    assert live["steps"][1] == {"type": "resize", "params": {"width": 32, "height": 32}}
    assert history[0][1]["steps"][1]["params"]["width"] == 64  # version 1 is unchanged


async def test_many_changes_in_one_transaction_are_one_version(
    make_client: ClientFactory, db
) -> None:
    pipeline_id = await new_pipeline(make_client)
    async with db.transaction():
        await db.execute(
            "UPDATE pipeline_steps SET type = 'grayscale', params = '{}' "
            "WHERE pipeline_id = $1 AND position = 2",
            pipeline_id,
        )
        await db.execute(
            "UPDATE pipeline_steps SET position = position + 1 "
            "WHERE pipeline_id = $1 AND position >= 5",
            pipeline_id,
        )
        await db.execute(
            "INSERT INTO pipeline_steps (pipeline_id, position, type, params) "
            "VALUES ($1, 5, 'filter_detections', '{\"min_confidence\": 0.5}')",
            pipeline_id,
        )
        await db.execute(
            "UPDATE pipelines SET description = 'edited by hand' WHERE id = $1", pipeline_id
        )
    version, live = await current(db, pipeline_id)
    assert version == 2
    assert [v for v, _ in await versions(db, pipeline_id)] == [1, 2]
    assert [s["type"] for s in live["steps"]] == [
        "decode",
        "resize",
        "grayscale",
        "base64",
        "detect",
        "filter_detections",
        "save",
    ]
    assert live["description"] == "edited by hand"


async def test_writing_the_same_values_or_deleting_is_not_a_new_version(
    make_client: ClientFactory, db
) -> None:
    pipeline_id = await new_pipeline(make_client)
    await db.execute(
        "UPDATE pipeline_steps SET params = params WHERE pipeline_id = $1", pipeline_id
    )
    await db.execute("UPDATE pipelines SET name = name WHERE id = $1", pipeline_id)
    await db.execute("UPDATE pipelines SET is_active = false WHERE id = $1", pipeline_id)
    assert (await current(db, pipeline_id))[0] == 1
    assert [v for v, _ in await versions(db, pipeline_id)] == [1]


async def test_a_version_set_by_hand_never_reuses_a_number(make_client: ClientFactory, db) -> None:
    pipeline_id = await new_pipeline(make_client)
    await db.execute("UPDATE pipelines SET description = 'second' WHERE id = $1", pipeline_id)
    await db.execute("UPDATE pipelines SET description = 'third' WHERE id = $1", pipeline_id)
    # Rewinding the number by hand: version 1 described something else, so this is a new one.
    await db.execute("UPDATE pipelines SET version = 1 WHERE id = $1", pipeline_id)
    version, live = await current(db, pipeline_id)
    history = await versions(db, pipeline_id)
    assert version == 4
    assert [v for v, _ in history] == [1, 2, 3, 4]
    assert history[-1][1] == live and live["description"] == "third"
    # Jumping ahead: the new number simply gets the current definition.
    await db.execute("UPDATE pipelines SET version = 10 WHERE id = $1", pipeline_id)
    assert [v for v, _ in await versions(db, pipeline_id)] == [1, 2, 3, 4, 10]


async def test_concurrent_edits_by_hand_get_consecutive_versions(
    make_client: ClientFactory, database_url: str, db
) -> None:
    pipeline_id = await new_pipeline(make_client)
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        one, two = first.transaction(), second.transaction()
        await one.start()
        await two.start()
        await first.execute(
            'UPDATE pipeline_steps SET params = \'{"width": 10, "height": 10}\' '
            "WHERE pipeline_id = $1 AND position = 1",
            pipeline_id,
        )
        await second.execute(
            'UPDATE pipeline_steps SET params = \'{"encoding": "jpeg"}\' '
            "WHERE pipeline_id = $1 AND position = 3",
            pipeline_id,
        )
        # The second commit waits for the first (the pipeline row is locked) and then bumps
        # again: no version number is taken twice.
        await asyncio.gather(one.commit(), two.commit())
    finally:
        await first.close()
        await second.close()
    version, live = await current(db, pipeline_id)
    history = await versions(db, pipeline_id)
    assert version == 3
    assert [v for v, _ in history] == [1, 2, 3]
    assert history[-1][1] == live
    assert live["steps"][1]["params"] == {"width": 10, "height": 10}
    assert live["steps"][3]["params"] == {"encoding": "jpeg"}


async def test_a_step_moved_to_another_pipeline_changes_both(
    make_client: ClientFactory, db
) -> None:
    source, target = await new_pipeline(make_client), await new_pipeline(make_client)
    await db.execute(
        "UPDATE pipeline_steps SET pipeline_id = $2, position = 99 "
        "WHERE pipeline_id = $1 AND position = 5",
        source,
        target,
    )
    assert (await current(db, source))[0] == 2
    assert (await current(db, target))[0] == 2


async def test_a_pipeline_without_runs_can_still_be_removed_by_hand(
    make_client: ClientFactory, db
) -> None:
    pipeline_id = await new_pipeline(make_client)
    await db.execute("DELETE FROM pipelines WHERE id = $1", pipeline_id)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM pipeline_versions WHERE pipeline_id = $1", pipeline_id
        )
        == 0
    )


async def test_a_change_is_announced_with_notify_when_it_commits(
    make_client: ClientFactory, database_url: str, db
) -> None:
    pipeline_id = await new_pipeline(make_client)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("pipeline_changed", lambda *args: heard.put_nowait(args[3]))
        await db.execute("UPDATE pipelines SET description = 'x' WHERE id = $1", pipeline_id)
        assert await asyncio.wait_for(heard.get(), 10) == str(pipeline_id)
    finally:
        await listener.close()


async def test_an_edit_by_hand_reaches_the_running_service(
    make_client: ClientFactory, jpeg: bytes, db
) -> None:
    async with make_client(model=model_transport(detection_probability=1.0), **TOKEN) as client:
        pipeline_id = (await create(client))["id"]

        async def run() -> dict[str, Any]:
            response = await client.post(
                f"/process_image?pipeline_id={pipeline_id}", files={"image": jpeg}
            )
            return response.json()

        before = await run()  # now cached
        await db.execute(
            "UPDATE pipeline_steps SET type = 'grayscale', params = '{}' "
            "WHERE pipeline_id = $1 AND type = 'normalize'",
            pipeline_id,
        )
        after = await eventually(run, lambda body: body.get("pipeline_version") == 2)
        api_versions = (await client.get(f"/pipelines/{pipeline_id}/versions")).json()

        await db.execute(
            "UPDATE pipeline_steps SET params = '{\"width\": 0}' "
            "WHERE pipeline_id = $1 AND type = 'resize'",
            pipeline_id,
        )
        broken = await eventually(run, lambda body: body.get("status") == 422)

    assert before["pipeline_version"] == 1 and "normalize" in before["timings_ms"]
    assert after["pipeline_version"] == 2
    assert list(after["timings_ms"]) == [
        "decode",
        "resize",
        "grayscale",
        "base64",
        "detect",
        "save",
    ]
    stored = await db.fetchval(
        "SELECT pipeline_version FROM processing_runs WHERE id = $1", after["run_id"]
    )
    assert stored == 2
    assert [s["type"] for s in api_versions[1]["steps"]][2] == "grayscale"
    assert broken["status"] == 422
    assert broken["errors"] == [
        {
            "index": 1,
            "step_type": "resize",
            "field": "width",
            "message": "Input should be greater than or equal to 1",
        }
    ]
    assert (await current(db, pipeline_id))[0] == 3
