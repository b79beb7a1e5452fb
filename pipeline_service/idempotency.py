"""Idempotency-Key handling: a retried request answers the run its first attempt stored.

- A key is bound to a run only when that run *succeeded*, in the same transaction that
  stores it. A failed attempt (model or database trouble) binds nothing, so a client that
  retries after a 5xx with the same key gets a fresh attempt.
- Two requests with one key at the same moment both run; the second one's save finds the key
  taken (PostgreSQL makes it wait for the first transaction), rolls its own run back and
  answers the first run. Nothing is stored twice.
- The key is remembered for IDEMPOTENCY_TTL_S; expired keys are free again and purged.
"""

import asyncio
import contextlib
import hashlib
import logging
from concurrent.futures import Executor

from pipeline_service.db.idempotency import IdempotencyRepository, ensure_same_request
from pipeline_service.db.results import ResultsRepository, StoredRun
from pipeline_service.pipeline.types import IdempotencyClaim

log = logging.getLogger(__name__)

PURGE_EVERY_S = 600.0


def request_sha256(pipeline_id: int, image_sha256: str) -> str:
    return hashlib.sha256(f"{pipeline_id}:{image_sha256}".encode()).hexdigest()


class IdempotentRequests:
    def __init__(self, keys: IdempotencyRepository, runs: ResultsRepository, ttl_s: int) -> None:
        self._keys = keys
        self._runs = runs
        self.ttl_s = ttl_s

    async def claim_for(
        self, key: str, pipeline_id: int, data: bytes, cpu_pool: Executor
    ) -> tuple[IdempotencyClaim, str]:
        """The claim for this request, and the image's sha256 (hashed off the event loop)."""
        loop = asyncio.get_running_loop()
        image_sha = await loop.run_in_executor(cpu_pool, _sha256, data)
        claim = IdempotencyClaim(
            key, pipeline_id, request_sha256(pipeline_id, image_sha), self.ttl_s
        )
        return claim, image_sha

    async def earlier_run(self, claim: IdempotencyClaim) -> StoredRun | None:
        """The run this key already stands for; IdempotencyConflict if it was another request."""
        record = await self._keys.find(claim.key)
        if record is None:
            return None
        ensure_same_request(claim, record)
        return await self._runs.get(record.run_id)

    async def stored_run(self, run_id: int) -> StoredRun | None:
        return await self._runs.get(run_id)


async def purge_expired_keys(keys: IdempotencyRepository) -> None:
    """One purge (a background job, every PURGE_EVERY_S). `keys` is on a connection of its own
    per purge (runtime.py), not on the request pool: the DELETE neither takes a request's
    connection nor shows in `db_pool_connections_in_use`."""
    with contextlib.suppress(Exception):  # the database may be down; try next time
        purged = await keys.purge_expired()
        if purged:
            log.info("purged %d expired idempotency keys", purged)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
