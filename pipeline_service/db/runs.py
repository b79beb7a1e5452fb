"""Writing processing runs, their boxes inside the row: one statement per run (in a
transaction only when an idempotency key is bound with it).

A write, once started, is finished even if the request that asked for it is cancelled
(client gone, shutdown deadline): the run is shielded, and `drain()` lets shutdown wait for it.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.idempotency import IdempotencyRepository, claim_key, ensure_same_request
from pipeline_service.db.models import ProcessingRun
from pipeline_service.pipeline.types import Box, RunContext


class _KeyTaken(Exception):
    """Rolls the run back: the Idempotency-Key already stands for another run."""


RUNS: Table = ProcessingRun.__table__  # type: ignore[assignment]
RUN_FIELDS = (
    "pipeline_id",
    "pipeline_version",
    "status",
    "car_detected",
    "image_sha256",
    "image_bytes",
    "image_width",
    "image_height",
    "timings_ms",
    "error",
    "boxes",
)

# One statement stores the run with its boxes (they live in the row since migration 0005).
# A statement is atomic by itself, so without an idempotency key to bind it runs without
# BEGIN / COMMIT: one round trip instead of three or four. Built once: building the
# statement per run cost ~0.2 ms of CPU (docs/performance.md).
INSERT_RUN = (
    insert(RUNS)
    .values({name: bindparam(name, type_=RUNS.c[name].type) for name in RUN_FIELDS})
    .returning(RUNS.c.id)
)


def box_numbers(boxes: list[Box] | None) -> list[float] | None:
    """The boxes as the `boxes` column holds them: six numbers each, NULL for none."""
    return [float(v) for b in boxes for v in b.as_tuple()] if boxes else None


class RunRepository:
    """Implements the engine's `RunRecorder`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._keys = IdempotencyRepository(engine)
        self._pending: set[asyncio.Task[int]] = set()

    async def record_success(self, ctx: RunContext) -> int:
        return await self._shielded(self._insert_success(ctx))

    async def record_failure(self, ctx: RunContext, error: str) -> int:
        return await self._shielded(self._insert(ctx, status="failed", error=error))

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) for writes still in progress; used at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_s)

    async def _shielded(self, write: Any) -> int:
        task: asyncio.Task[int] = asyncio.ensure_future(write)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        # If nobody awaits it any more (request cancelled), its error must not go unnoticed.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(task)

    async def _insert_success(self, ctx: RunContext, attempts: int = 3) -> int:
        claim = ctx.idempotency
        for _ in range(attempts):
            try:
                return await self._insert(ctx, status="succeeded", error=None)
            except _KeyTaken:
                assert claim is not None
            # Another request with this key committed first: answer its run, store nothing.
            record = await self._keys.find(claim.key)
            if record is not None:
                ensure_same_request(claim, record)
                ctx.replayed = True
                return record.run_id
            # it expired (or was purged) in between: the key is free again, try once more
        raise RuntimeError(f"could not claim idempotency key {claim!r}")

    async def _insert(self, ctx: RunContext, status: str, error: str | None) -> int:
        assert ctx.image_sha256 is not None
        succeeded = status == "succeeded"
        values = {
            "pipeline_id": ctx.pipeline.id,
            "pipeline_version": ctx.pipeline.version,
            "status": status,
            "car_detected": ctx.car_detected if succeeded else None,
            "image_sha256": bytes.fromhex(ctx.image_sha256),
            "image_bytes": len(ctx.data),
            "image_width": ctx.image_width,
            "image_height": ctx.image_height,
            "timings_ms": dict(ctx.timings_ms),
            "error": error,
            "boxes": box_numbers(ctx.detections if succeeded else None),
        }
        claim = ctx.idempotency if succeeded else None
        async with database_errors_as_unavailable(), self._connection(claim is not None) as conn:
            run_id: int = (await conn.execute(INSERT_RUN, values)).scalar_one()
            if claim is not None and not await claim_key(conn, claim, run_id):
                raise _KeyTaken
        return run_id

    @asynccontextmanager
    async def _connection(self, transaction: bool) -> AsyncIterator[AsyncConnection]:
        """In a transaction (to bind an idempotency key along with the run), or in autocommit
        (one statement; the pool sets the connection back when it returns)."""
        if transaction:
            async with self._engine.begin() as conn:
                yield conn
        else:
            async with self._engine.connect() as conn:
                yield await conn.execution_options(isolation_level="AUTOCOMMIT")
