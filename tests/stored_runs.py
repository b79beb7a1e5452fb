"""Helpers for tests that read results: a pipeline of their own, runs written straight to
PostgreSQL (the same INSERT columns the service uses; defaults included)."""

import uuid
from datetime import datetime

import asyncpg

INSERT_RUN = """
INSERT INTO processing_runs (pipeline_id, pipeline_version, status, car_detected, image_sha256,
                             image_bytes, image_width, image_height, timings_ms, error,
                             created_at)
VALUES ($1, 1, $2, $3, $4, 2048, 64, 48, '{"decode": 1.5, "resize": 0.25}', $5,
        COALESCE($6, now()))
RETURNING id
"""
INSERT_BOX = """
INSERT INTO detections (run_id, top_left_x, top_left_y, w, h, conf, label)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


async def new_pipeline(db: asyncpg.Connection) -> int:
    """A pipeline with the car-detection steps, so runs can also be made through the API."""
    async with db.transaction():
        pipeline_id = await db.fetchval(
            "INSERT INTO pipelines (name, description) VALUES ($1, 'results tests') RETURNING id",
            f"results-test-{uuid.uuid4().hex[:10]}",
        )
        await db.execute(
            "INSERT INTO pipeline_steps (pipeline_id, position, type, params) "
            "SELECT $1, position, type, params FROM pipeline_steps WHERE pipeline_id = 1",
            pipeline_id,
        )
    return pipeline_id


async def insert_run(
    db: asyncpg.Connection,
    pipeline_id: int,
    *,
    status: str = "succeeded",
    car: bool | None = True,
    created_at: datetime | None = None,
    boxes: tuple[tuple[float, float, float, float, float, int], ...] | None = None,
) -> int:
    """One run (in the caller's transaction, if any) with its boxes."""
    if status == "failed":
        car = None
    error = "The model service did not answer within 5 s." if status == "failed" else None
    run_id = await db.fetchval(
        INSERT_RUN, pipeline_id, status, car, uuid.uuid4().hex * 2, error, created_at
    )
    if boxes is None:
        boxes = ((412.0, 288.0, 186.0, 121.0, 0.87, 1),) if car else ()
    for box in boxes:
        await db.execute(INSERT_BOX, run_id, *box)
    return run_id


async def listing_order(db: asyncpg.Connection, ids: set[int]) -> list[int]:
    """The given runs in the order GET /results promises: newest first."""
    rows = await db.fetch(
        "SELECT id FROM processing_runs WHERE id = ANY($1::bigint[]) "
        "ORDER BY created_at DESC, id DESC",
        list(ids),
    )
    return [row["id"] for row in rows]
