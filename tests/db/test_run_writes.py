"""A run without an idempotency key is written in autocommit, as one statement; the pooled
connection it used must come back transactional for everyone else."""

from typing import Any

import asyncpg
import pytest

from pipeline_service.config import asyncpg_url
from pipeline_service.db.engine import create_engine
from pipeline_service.db.runs import RunRepository
from pipeline_service.pipeline.definition import PipelineRef
from pipeline_service.pipeline.types import RunContext


class Rollback(Exception):
    pass


def failed_run() -> RunContext:
    services: Any = None  # storing a run uses none of them
    ctx = RunContext(pipeline=PipelineRef(1, 1, "car-detection"), data=b"x", services=services)
    ctx.fingerprint()
    return ctx


async def test_the_connection_of_an_autocommit_write_comes_back_transactional(
    database_url: str, db: asyncpg.Connection
) -> None:
    engine = create_engine(asyncpg_url(database_url), pool_size=1, pre_ping=False)
    try:
        run_id = await RunRepository(engine).record_failure(failed_run(), "a test failure")
        assert engine.pool.checkedin() == 1  # that one connection, back in the pool
        async with engine.connect() as conn:
            assert await conn.get_isolation_level() == "READ COMMITTED"
        with pytest.raises(Rollback):
            async with engine.begin() as conn:
                await conn.exec_driver_sql(
                    "UPDATE processing_runs SET error = 'changed' WHERE id = $1", (run_id,)
                )
                raise Rollback
        assert engine.pool.checkedin() == 1  # still the same one
    finally:
        await engine.dispose()
    stored = await db.fetchrow("SELECT status, error FROM processing_runs WHERE id = $1", run_id)
    assert dict(stored) == {"status": "failed", "error": "a test failure"}  # rolled back
