"""The seed runs at every start (`make run`, `docker compose up`): it creates the
car-detection pipeline once and leaves it alone after that, changed or not."""

import asyncio
import json
from typing import Any

import asyncpg

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from pipeline_service.db import migrate
from pipeline_service.pipeline.step import STEP_TYPES
from tests.fixtures.database import fresh_database
from tests.fixtures.pipelines import TOKEN
from tests.fixtures.services import app_client, model_transport

CHANGED_STEPS = ["decode", "resize", "base64", "detect", "save"]  # one fewer than the seed


async def _pipeline(url: str) -> tuple[int, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        version = await conn.fetchval("SELECT version FROM pipelines WHERE id = 1")
        steps = await conn.fetch(
            "SELECT type FROM pipeline_steps WHERE pipeline_id = 1 ORDER BY position"
        )
        return version, [row["type"] for row in steps]
    finally:
        await conn.close()


async def _replace_steps(url: str, steps: list[str]) -> None:
    """What PUT /pipelines/1 does to the tables."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM pipeline_steps WHERE pipeline_id = 1")
            await conn.executemany(
                "INSERT INTO pipeline_steps (pipeline_id, position, type, params) "
                "VALUES (1, $1, $2, '{}')",
                list(enumerate(steps)),
            )
    finally:
        await conn.close()


def test_seeding_again_keeps_a_changed_pipeline(postgres_url: str) -> None:
    # A database of its own: the test changes pipeline 1, which the others rely on.
    with fresh_database(postgres_url) as url:  # migrated and seeded once
        version, steps = asyncio.run(_pipeline(url))
        assert (version, len(steps)) == (1, 6)

        asyncio.run(_replace_steps(url, CHANGED_STEPS))
        changed = asyncio.run(_pipeline(url))
        assert changed == (2, CHANGED_STEPS)

        migrate.seed(url)
        assert asyncio.run(_pipeline(url)) == changed


async def _seeded_params(url: str) -> list[tuple[str, dict[str, Any]]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT type, params::text FROM pipeline_steps WHERE pipeline_id = 1 ORDER BY position"
        )
        return [(row["type"], json.loads(row["params"])) for row in rows]
    finally:
        await conn.close()


def test_the_seed_writes_every_param_out_as_the_api_stores_it(postgres_url: str) -> None:
    with fresh_database(postgres_url) as url:
        for step_type, params in asyncio.run(_seeded_params(url)):
            complete = STEP_TYPES[step_type].Params(**params).model_dump(mode="json")
            assert params == complete, f"seed.sql leaves params of {step_type} to defaults"


async def test_pipeline_1_read_and_sent_back_unchanged_is_not_a_new_version(
    own_database_url: str,
) -> None:
    """docs/api.md's promise: a GET answer can be sent back to PUT as it is. On a database
    of this module's own, as seeded."""
    settings = Settings(database_url=own_database_url, pipeline_admin_token=TOKEN, gc_freeze=False)
    async with app_client(create_app(settings, model_transport=model_transport())) as client:
        read = await client.get("/pipelines/1")
        assert read.status_code == 200
        sent = await client.put(
            "/pipelines/1", json=read.json(), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert sent.status_code == 200
        assert sent.json()["version"] == read.json()["version"] == 1
        versions = await client.get("/pipelines/1/versions")
        assert [v["version"] for v in versions.json()] == [1]
