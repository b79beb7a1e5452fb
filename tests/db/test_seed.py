"""The seed runs at every start (`make run`, `docker compose up`): it creates the
car-detection pipeline once and leaves it alone after that, changed or not."""

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from pipeline_service.db import migrate

CHANGED_STEPS = ["decode", "resize", "base64", "detect", "save"]  # one fewer than the seed


async def _admin(postgres_url: str, sql: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def own_database(postgres_url: str) -> Iterator[str]:
    """A database of this test's own: it changes pipeline 1, which the others rely on."""
    name = f"pipeline_seed_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


def test_seeding_again_keeps_a_changed_pipeline(own_database: str) -> None:
    migrate.upgrade(own_database)
    migrate.seed(own_database)
    version, steps = asyncio.run(_pipeline(own_database))
    assert (version, len(steps)) == (1, 6)

    asyncio.run(_replace_steps(own_database, CHANGED_STEPS))
    changed = asyncio.run(_pipeline(own_database))
    assert changed == (2, CHANGED_STEPS)

    migrate.seed(own_database)
    assert asyncio.run(_pipeline(own_database)) == changed
