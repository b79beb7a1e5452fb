"""The seed runs at every start (`make run`, `docker compose up`): it creates the
car-detection pipeline once and leaves it alone after that, changed or not."""

import asyncio

import asyncpg

from pipeline_service.db import migrate
from tests.fixtures.database import fresh_database

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
