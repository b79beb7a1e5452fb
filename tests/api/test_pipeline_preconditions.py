"""Conditional changes: every answer that carries a pipeline sends its version as ETag, and PUT
and DELETE with If-Match change it only if it is still at that version; otherwise 412 and
nothing is written."""

import asyncio
from typing import Any

import asyncpg
import httpx

from tests.fixtures.pipelines import (
    AUTH,
    CAR_STEPS,
    TOKEN,
    create,
    definition,
    eventually,
    pipeline_tables,
)
from tests.fixtures.services import ClientFactory

ADMIN = {"pipeline_admin_token": TOKEN}
GRAY_STEPS = [CAR_STEPS[0], {"type": "grayscale"}, *CAR_STEPS[1:]]


def replacement(created: dict[str, Any], steps: list[dict[str, Any]] = GRAY_STEPS) -> dict:
    return definition(steps, name=created["name"], description=created["description"])


async def put(
    client: httpx.AsyncClient, pipeline_id: int, body: dict[str, Any], if_match: str | None
) -> httpx.Response:
    headers = AUTH if if_match is None else {**AUTH, "If-Match": if_match}
    return await client.put(f"/pipelines/{pipeline_id}", json=body, headers=headers)


async def delete(client: httpx.AsyncClient, pipeline_id: int, if_match: str) -> httpx.Response:
    return await client.delete(f"/pipelines/{pipeline_id}", headers={**AUTH, "If-Match": if_match})


def assert_changed_meanwhile(response: httpx.Response, pipeline_id: int, current: int) -> None:
    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/pipeline-changed"
    assert problem["current_version"] == current
    assert f"Pipeline {pipeline_id} is at version {current}" in problem["detail"]
    assert f'If-Match: "{current}"' in problem["detail"]


async def test_answers_carry_the_version_as_etag_and_a_matching_if_match_changes_it(
    make_client: ClientFactory,
) -> None:
    async with make_client(**ADMIN) as client:
        created_answer = await client.post("/pipelines", json=definition(), headers=AUTH)
        created = created_answer.json()
        got = await client.get(f"/pipelines/{created['id']}")
        changed = await put(client, created["id"], replacement(created), got.headers["ETag"])
        again = await client.get(f"/pipelines/{created['id']}")
    assert created_answer.headers["ETag"] == got.headers["ETag"] == '"1"'
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.headers["ETag"] == again.headers["ETag"] == '"2"'
    assert [s["type"] for s in again.json()["steps"]] == [s["type"] for s in GRAY_STEPS]


async def test_a_stale_if_match_is_a_412_and_writes_nothing(
    make_client: ClientFactory, db: asyncpg.Connection
) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        first = await put(client, pipeline_id, replacement(created), '"1"')  # now version 2
        before = await pipeline_tables(db)
        stale_put = await put(client, pipeline_id, replacement(created, CAR_STEPS), '"1"')
        stale_delete = await delete(client, pipeline_id, '"1"')
        after = await pipeline_tables(db)
        still = await client.get(f"/pipelines/{pipeline_id}")
    assert first.status_code == 200, first.text
    assert_changed_meanwhile(stale_put, pipeline_id, current=2)
    assert_changed_meanwhile(stale_delete, pipeline_id, current=2)
    assert after == before
    assert still.status_code == 200 and still.json()["version"] == 2


async def waiting_on_a_lock(database_url: str) -> int:
    """How many backends of this database wait for a row lock (read from outside any
    transaction: pg_stat_activity is a snapshot within one)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    finally:
        await conn.close()


async def test_a_change_landing_while_a_put_waits_for_the_row_makes_that_put_a_412(
    make_client: ClientFactory, db: asyncpg.Connection, database_url: str
) -> None:
    """The version is checked on the locked row: a PUT that arrives while another change is
    being written cannot overwrite that change."""
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        async with db.transaction():
            await db.execute("SELECT 1 FROM pipelines WHERE id = $1 FOR UPDATE", pipeline_id)
            pending = asyncio.create_task(put(client, pipeline_id, replacement(created), '"1"'))
            waiting = await eventually(lambda: waiting_on_a_lock(database_url), lambda n: n > 0)
            assert waiting == 1, "the PUT never reached the row lock"
            await db.execute(
                "UPDATE pipelines SET description = 'changed meanwhile' WHERE id = $1",
                pipeline_id,
            )
        answer = await pending
        versions = (await client.get(f"/pipelines/{pipeline_id}/versions")).json()
    assert_changed_meanwhile(answer, pipeline_id, current=2)
    assert [(v["version"], v["description"]) for v in versions] == [
        (1, created["description"]),
        (2, "changed meanwhile"),
    ]


async def test_a_put_is_judged_on_the_row_it_locks_404_then_412_then_422(
    make_client: ClientFactory, db: asyncpg.Connection, database_url: str
) -> None:
    """Existence, version and validity are all checked in the change's one transaction, after
    it has the row: an invalid PUT waiting for the row answers for what it finds there, a
    412 if the pipeline changed meanwhile, a 404 if it was deleted."""
    invalid_steps = [{"type": "resize", "params": {"width": 0}}]
    async with make_client(**ADMIN) as client:
        answers = []
        for landing in (
            "UPDATE pipelines SET description = 'changed meanwhile' WHERE id = $1",
            "UPDATE pipelines SET is_active = false WHERE id = $1",
        ):
            created = await create(client)
            body = replacement(created, invalid_steps)
            async with db.transaction():
                await db.execute("SELECT 1 FROM pipelines WHERE id = $1 FOR UPDATE", created["id"])
                pending = asyncio.create_task(put(client, created["id"], body, '"1"'))
                waiting = await eventually(lambda: waiting_on_a_lock(database_url), lambda n: n > 0)
                assert waiting == 1, "the PUT never reached the row lock"
                await db.execute(landing, created["id"])
            answers.append((created["id"], await pending))
    (changed_id, changed), (_, deleted) = answers
    assert_changed_meanwhile(changed, changed_id, current=2)
    assert deleted.status_code == 404, deleted.text
    assert deleted.json()["type"] == "/problems/pipeline-not-found"


async def test_of_two_puts_based_on_the_same_version_only_one_lands(
    make_client: ClientFactory,
) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        bodies = [
            replacement(created, GRAY_STEPS),
            replacement(created, [*CAR_STEPS[:1], {"type": "gaussian_blur"}, *CAR_STEPS[1:]]),
        ]
        answers = await asyncio.gather(*(put(client, pipeline_id, b, '"1"') for b in bodies))
        versions = (await client.get(f"/pipelines/{pipeline_id}/versions")).json()
    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
    [won] = [a for a in answers if a.status_code == 200]
    [lost] = [a for a in answers if a.status_code == 412]
    assert_changed_meanwhile(lost, pipeline_id, current=2)
    # Version 2 holds the winner's steps, and no version 3 was made from the loser's.
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["steps"] == won.json()["steps"]


async def test_a_change_made_in_psql_also_makes_the_old_etag_stale(
    make_client: ClientFactory, db: asyncpg.Connection
) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        etag = (await client.get(f"/pipelines/{pipeline_id}")).headers["ETag"]
        await db.execute(
            "UPDATE pipelines SET description = 'edited by hand' WHERE id = $1", pipeline_id
        )
        answer = await put(client, pipeline_id, replacement(created), etag)
    assert_changed_meanwhile(answer, pipeline_id, current=2)


async def test_if_match_forms(make_client: ClientFactory) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        star = await put(client, pipeline_id, replacement(created), "*")  # -> version 2
        listed = await put(client, pipeline_id, replacement(created, CAR_STEPS), '"7", "2"')
        weak = await put(client, pipeline_id, replacement(created), 'W/"3"')  # never matches
        unknown_tag = await put(client, pipeline_id, replacement(created), '"abc"')
        deleted = await delete(client, pipeline_id, ' "3" ')
    assert star.status_code == 200 and star.json()["version"] == 2
    assert listed.status_code == 200 and listed.json()["version"] == 3
    assert_changed_meanwhile(weak, pipeline_id, current=3)
    assert_changed_meanwhile(unknown_tag, pipeline_id, current=3)
    assert deleted.status_code == 204, deleted.text


async def test_a_malformed_if_match_is_a_422_naming_the_header(
    make_client: ClientFactory, db: asyncpg.Connection
) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        before = await pipeline_tables(db)
        answers = [
            await put(client, pipeline_id, replacement(created), value)
            for value in ("1", '"1", 2', '"1",', "", '"1' + "0" * 1100 + '"')
        ]
        bad_delete = await delete(client, pipeline_id, "1")
        after = await pipeline_tables(db)
    for answer in [*answers, bad_delete]:
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"] == "/problems/invalid-request"
        assert [e["field"] for e in answer.json()["errors"]] == ["If-Match"]
    assert 'e.g. "3"' in answers[0].json()["errors"][0]["message"]
    assert after == before


async def test_404_comes_before_412_and_412_before_422(make_client: ClientFactory) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        missing = await put(client, 2_000_000_000, definition(), '"1"')
        missing_delete = await delete(client, 2_000_000_000, '"1"')
        invalid_steps = [{"type": "resize", "params": {"width": 0}}]
        stale_and_invalid = await put(
            client, created["id"], replacement(created, invalid_steps), '"5"'
        )
        fresh_and_invalid = await put(
            client, created["id"], replacement(created, invalid_steps), '"1"'
        )
    assert missing.status_code == missing_delete.status_code == 404
    assert_changed_meanwhile(stale_and_invalid, created["id"], current=1)
    assert fresh_and_invalid.status_code == 422
    assert fresh_and_invalid.json()["type"] == "/problems/invalid-pipeline"


async def test_without_the_token_if_match_changes_nothing_about_the_401(
    make_client: ClientFactory,
) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        answer = await client.put(
            f"/pipelines/{created['id']}", json=replacement(created), headers={"If-Match": '"9"'}
        )
    assert answer.status_code == 401


async def get(client: httpx.AsyncClient, pipeline_id: int, if_none_match: str) -> httpx.Response:
    return await client.get(f"/pipelines/{pipeline_id}", headers={"If-None-Match": if_none_match})


async def test_a_get_with_the_current_etag_in_if_none_match_is_a_304_without_body(
    make_client: ClientFactory,
) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        pipeline_id = created["id"]
        current = await get(client, pipeline_id, '"1"')
        forms = [await get(client, pipeline_id, value) for value in ("*", 'W/"1"', '"7", "1"')]
        changed = await put(client, pipeline_id, replacement(created), '"1"')
        stale = await get(client, pipeline_id, '"1"')
    for answer in [current, *forms]:
        assert answer.status_code == 304, answer.text
        assert answer.content == b""
        assert answer.headers["ETag"] == '"1"'
    assert changed.status_code == 200
    assert stale.status_code == 200  # the copy with version 1 is out of date: the new one
    assert stale.headers["ETag"] == '"2"'
    assert stale.json() == changed.json()


async def test_if_none_match_errors(make_client: ClientFactory) -> None:
    async with make_client(**ADMIN) as client:
        created = await create(client)
        malformed = await get(client, created["id"], "1")
        missing = await get(client, 2_000_000_000, '"1"')
    assert malformed.status_code == 422
    assert [e["field"] for e in malformed.json()["errors"]] == ["If-None-Match"]
    assert missing.status_code == 404
