"""Migration 0005 (runs partitioned by day, boxes in the row) keeps every run as it was: a
database at 0004 holding runs (old and recent days, with and without boxes, failed ones,
rows from before created_xid existed), boxes and idempotency keys is upgraded, and each run
reads back the same, field by field. Downgrade is refused, and refusing changes nothing."""

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.config import Config

from pipeline_service.db import migrate
from tests.fixtures.database import _with_database

# What a run was at 0004, in comparable form: the boxes as rows of six, sha256 as hex.
RUNS_AT_0004 = """
SELECT r.id, r.created_at, r.pipeline_id, r.pipeline_version, r.status, r.car_detected,
       r.image_sha256, r.image_bytes, r.image_width, r.image_height, r.timings_ms::text,
       r.error, r.created_xid::text,
       COALESCE((SELECT json_agg(json_build_array(d.top_left_x, d.top_left_y, d.w, d.h,
                                                  d.conf, d.label) ORDER BY d.id)::text
                 FROM detections d WHERE d.run_id = r.id), '[]') AS boxes
FROM processing_runs r ORDER BY r.id
"""
RUNS_AT_0005 = """
SELECT r.id, r.created_at, r.pipeline_id, r.pipeline_version, r.status::text,
       r.car_detected, encode(r.image_sha256, 'hex'), r.image_bytes, r.image_width,
       r.image_height, r.timings_ms::text, r.error, r.created_xid::text,
       COALESCE((SELECT json_agg(json_build_array(d.top_left_x, d.top_left_y, d.w, d.h,
                                                  d.conf, d.label) ORDER BY d.position)::text
                 FROM detections d WHERE d.run_id = r.id), '[]') AS boxes
FROM processing_runs r ORDER BY r.id
"""
KEYS = "SELECT * FROM idempotency_keys ORDER BY key"


def _config(url: str) -> Config:
    config = Config(str(migrate.ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture
def url_at_0004(postgres_url: str) -> Iterator[str]:
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    url = _with_database(postgres_url, name)
    try:
        command.upgrade(_config(url), "0004")
        migrate.seed(url)
        yield url
    finally:
        asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fill_at_0004(url: str) -> None:
    """Runs over several days (one long ago), boxes, failures, keys, pre-0003 rows."""
    conn = await asyncpg.connect(url)
    try:
        for n, (days_ago, status, car, boxes) in enumerate(
            [
                (400, "succeeded", True, [(1.5, 2.25, 3.0, 4.0, 0.875, 1)]),
                (
                    3,
                    "succeeded",
                    True,
                    [(1.0, 2.0, 3.0, 4.0, 0.5, 2), (9.1, 8.2, 7.3, 6.4, 0.3, 1)],
                ),
                (3, "failed", None, []),
                (1, "succeeded", False, []),
                (0, "succeeded", True, [(0.1, 0.2, 0.3, 0.4, 0.123456789012345, 1)] * 3),
                (0, "succeeded", None, []),
            ]
        ):
            run_id = await conn.fetchval(
                "INSERT INTO processing_runs (pipeline_id, pipeline_version, status, "
                "car_detected, image_sha256, image_bytes, image_width, image_height, "
                "timings_ms, error, created_at) VALUES (1, 1, $1, $2, $3, $4, 640, 480, "
                "$5::json, $6, now() - make_interval(days => $7, secs => $8)) RETURNING id",
                status,
                car,
                hashlib.sha256(str(n).encode()).hexdigest(),
                1000 + n,
                json.dumps({"decode": 1.5 + n, "resize": 0.25, "detect": 3.0}),
                "the model service did not answer" if status == "failed" else None,
                days_ago,
                n * 0.001,
            )
            for box in boxes:
                await conn.execute(
                    "INSERT INTO detections (run_id, top_left_x, top_left_y, w, h, conf, label) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    run_id,
                    *box,
                )
            await conn.execute(
                "INSERT INTO idempotency_keys (key, pipeline_id, request_sha256, run_id, "
                "expires_at) VALUES ($1, 1, $2, $3, now() + interval '1 day')",
                f"key-{n}",
                hashlib.sha256(f"request {n}".encode()).hexdigest(),
                run_id,
            )
        # a run from before migration 0003: no created_xid
        await conn.execute("UPDATE processing_runs SET created_xid = NULL WHERE id = 1")
    finally:
        await conn.close()


async def _read(url: str, runs_query: str) -> tuple[list[Any], list[Any], int]:
    conn = await asyncpg.connect(url)
    try:
        runs = [tuple(r) for r in await conn.fetch(runs_query)]
        keys = [tuple(r) for r in await conn.fetch(KEYS)]
        last_id = await conn.fetchval("SELECT last_value FROM processing_runs_id_seq")
        return runs, keys, last_id
    finally:
        await conn.close()


def test_upgrade_keeps_every_run_box_and_key_and_downgrade_is_refused(url_at_0004: str) -> None:
    asyncio.run(_fill_at_0004(url_at_0004))
    before = asyncio.run(_read(url_at_0004, RUNS_AT_0004))
    assert len(before[0]) == 6 and len(before[1]) == 6

    command.upgrade(_config(url_at_0004), "0005")
    after = asyncio.run(_read(url_at_0004, RUNS_AT_0005))
    assert after == before

    async def partitions_and_next_id() -> tuple[list[str], int, int]:
        conn = await asyncpg.connect(url_at_0004)
        try:
            names = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'processing_runs'::regclass ORDER BY 1"
            )
            in_default = await conn.fetchval("SELECT count(*) FROM processing_runs_default")
            new_id = await conn.fetchval(
                "INSERT INTO processing_runs (pipeline_id, pipeline_version, status, "
                "image_sha256, image_bytes) VALUES (1, 1, 'failed', '\\x00', 1) RETURNING id"
            )
            return [r[0] for r in names], in_default, new_id
        finally:
            await conn.close()

    names, in_default, new_id = asyncio.run(partitions_and_next_id())
    assert in_default == 0  # each old day got its own partition
    assert "processing_runs_default" in names and len(names) >= 1 + 4 + 2
    assert new_id == before[2] + 1  # the id sequence carried on

    with pytest.raises(RuntimeError, match="one-way"):
        command.downgrade(_config(url_at_0004), "0004")
    runs, keys, _ = asyncio.run(_read(url_at_0004, RUNS_AT_0005))
    assert runs[:6] == before[0] and keys == before[1]
