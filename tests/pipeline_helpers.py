"""Shared bits of the pipeline-management tests: the admin token and small definitions."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import httpx

from pipeline_service.db.change_listener import APPLICATION_NAME

T = TypeVar("T")

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

CAR_STEPS: list[dict[str, Any]] = [
    {"type": "decode"},
    {"type": "resize", "params": {"width": 64, "height": 64}},
    {"type": "normalize"},
    {"type": "base64"},
    {"type": "detect"},
    {"type": "save"},
]


def unique_name(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def definition(steps: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "name": unique_name(),
        "description": "made by a test",
        "steps": CAR_STEPS if steps is None else steps,
        **fields,
    }


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/pipelines", json=definition(**fields), headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


async def pipeline_tables(db: asyncpg.Connection) -> dict[str, str]:
    """A fingerprint of every table a pipeline change writes: 'nothing written' means this
    stays the same."""
    return {
        table: await db.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
        )
        for table in ("pipelines", "pipeline_steps", "pipeline_versions")
    }


async def eventually(
    attempt: Callable[[], Awaitable[T]], done: Callable[[T], bool], within_s: float = 15.0
) -> T:
    """Repeat `attempt` until `done` says so (or the time is up), and return the last result.

    For changes that reach other processes asynchronously (NOTIFY); the caller asserts on the
    result, so a change that never arrives fails the test with what was seen instead.
    """
    deadline = time.monotonic() + within_s
    while True:
        result = await attempt()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def listener_pids(db: asyncpg.Connection) -> set[int]:
    """The backends of the pipeline services' LISTEN connections on this database."""
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
        "AND datname = current_database()",
        APPLICATION_NAME,
    )
    return {row["pid"] for row in rows}
