"""Writing processing runs and their detections: one short transaction per run.

A write, once started, is finished even if the request that asked for it is cancelled
(client gone, shutdown deadline): the run is shielded, and `drain()` lets shutdown wait for it.
"""

import asyncio
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.idempotency import IdempotencyRepository, claim_key, ensure_same_request
from pipeline_service.db.models import Detection, ProcessingRun
from pipeline_service.pipeline.types import RunContext


class _KeyTaken(Exception):
    """Rolls the run back: the Idempotency-Key already stands for another run."""


RUNS = ProcessingRun.__table__
DETECTIONS = Detection.__table__
# Built once: building `insert(...).values(...)` per run cost ~0.2 ms of CPU (bench/README).
INSERT_RUN = insert(RUNS).returning(RUNS.c.id)
INSERT_DETECTIONS = insert(DETECTIONS)


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
        run = {
            "pipeline_id": ctx.pipeline.id,
            "pipeline_version": ctx.pipeline.version,
            "status": status,
            "car_detected": ctx.car_detected if status == "succeeded" else None,
            "image_sha256": ctx.image_sha256,
            "image_bytes": len(ctx.data),
            "image_width": ctx.image_width,
            "image_height": ctx.image_height,
            "timings_ms": dict(ctx.timings_ms),
            "error": error,
        }
        boxes = ctx.detections if status == "succeeded" else None
        claim = ctx.idempotency if status == "succeeded" else None
        async with database_errors_as_unavailable(), self._engine.begin() as conn:
            run_id: int = (await conn.execute(INSERT_RUN, run)).scalar_one()
            if boxes:
                await conn.execute(
                    INSERT_DETECTIONS,
                    [
                        {
                            "run_id": run_id,
                            "top_left_x": b.top_left_x,
                            "top_left_y": b.top_left_y,
                            "w": b.w,
                            "h": b.h,
                            "conf": b.conf,
                            "label": b.label,
                        }
                        for b in boxes
                    ],
                )
            if claim is not None and not await claim_key(conn, claim, run_id):
                raise _KeyTaken
        return run_id
