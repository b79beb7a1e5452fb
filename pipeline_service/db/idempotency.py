"""Idempotency keys: which succeeded run a key stands for, until it expires."""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pipeline_service.db.engine import database_errors_as_unavailable
from pipeline_service.db.models import IdempotencyKey
from pipeline_service.errors import IdempotencyConflict
from pipeline_service.pipeline.types import IdempotencyClaim


@dataclass(frozen=True, slots=True)
class KeyRecord:
    pipeline_id: int
    request_sha256: str
    run_id: int


def ensure_same_request(claim: IdempotencyClaim, record: KeyRecord) -> None:
    """A key may only be reused for the very same request (same pipeline, same image)."""
    if record.request_sha256 == claim.request_sha256:
        return
    if record.pipeline_id != claim.pipeline_id:
        what = f"pipeline {record.pipeline_id}"
    else:
        what = "a different image"
    raise IdempotencyConflict(claim.key, what, record.run_id)


async def claim_key(conn: AsyncConnection, claim: IdempotencyClaim, run_id: int) -> bool:
    """Bind the key to `run_id` inside the caller's transaction. False if a live key is
    already bound (a concurrent claim waits here until the other transaction ends)."""
    values = {
        "key": claim.key,
        "pipeline_id": claim.pipeline_id,
        "request_sha256": claim.request_sha256,
        "run_id": run_id,
        "created_at": func.now(),
        "expires_at": func.now() + timedelta(seconds=claim.ttl_s),
    }
    new_key = insert(IdempotencyKey).values(values)
    statement = new_key.on_conflict_do_update(
        index_elements=[IdempotencyKey.key],
        set_={name: new_key.excluded[name] for name in values if name != "key"},
        where=IdempotencyKey.expires_at <= func.now(),  # an expired key is free again
    ).returning(IdempotencyKey.key)
    return (await conn.execute(statement)).first() is not None


class IdempotencyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(self, key: str) -> KeyRecord | None:
        async with database_errors_as_unavailable(), self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        IdempotencyKey.pipeline_id,
                        IdempotencyKey.request_sha256,
                        IdempotencyKey.run_id,
                    ).where(IdempotencyKey.key == key, IdempotencyKey.expires_at > func.now())
                )
            ).one_or_none()
        return None if row is None else KeyRecord(row.pipeline_id, row.request_sha256, row.run_id)

    async def purge_expired(self) -> int:
        async with database_errors_as_unavailable(), self._engine.begin() as conn:
            result = await conn.execute(
                delete(IdempotencyKey).where(IdempotencyKey.expires_at <= func.now())
            )
        return result.rowcount
