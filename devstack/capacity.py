"""Will the stack's connections fit PostgreSQL's max_connections? Checked before any service
starts: a stack that does not fit fails later, under load, with "too many clients".

Each pipeline-service process (replicas x workers) holds up to DB_POOL_SIZE + DB_MAX_OVERFLOW
pooled connections, one for /readyz's ping (pipeline_service/readiness.py), one LISTEN
connection, and one for its background jobs while one runs (the idempotency purge and the
partition maintenance, one at a time, every 10 minutes: pipeline_service/background.py).
Behind PgBouncer the pools, the readiness pings and the background jobs hold connections to
PgBouncer, which opens at most its pool size to PostgreSQL; the listeners still go direct.
"""

import asyncio
from dataclasses import dataclass

import asyncpg

from devstack.errors import StackError


@dataclass(frozen=True)
class ConnectionBudget:
    replicas: int
    workers: int  # uvicorn workers per replica
    pool_size: int
    max_overflow: int
    pgbouncer_pool: int | None = None  # server connections PgBouncer may open, if used

    @property
    def processes(self) -> int:
        return self.replicas * self.workers

    @property
    def pooled(self) -> int:
        """Connections the processes may open for queries (to PostgreSQL, or to PgBouncer):
        their pools, one readiness ping and one purge each."""
        return self.processes * (self.pool_size + self.max_overflow + 2)

    @property
    def at_postgres(self) -> int:
        """Connections PostgreSQL must accept from the stack at its busiest."""
        queries = self.pooled if self.pgbouncer_pool is None else self.pgbouncer_pool
        return queries + self.processes  # + one listener per process

    def explain(self) -> str:
        per_process = (
            f"{self.pool_size} + {self.max_overflow} overflow + 1 readiness + 1 purge + 1 listener"
        )
        text = f"{self.replicas} replica(s) x {self.workers} worker(s) x ({per_process})"
        if self.pgbouncer_pool is not None:
            text = (
                f"PgBouncer's {self.pgbouncer_pool} + {self.processes} listener(s) "
                f"({self.replicas} replica(s) x {self.workers} worker(s))"
            )
        return f"{text} = {self.at_postgres}"


async def _limits(database_url: str) -> tuple[int, int]:
    """(max_connections, connections reserved for superusers and pg_use_reserved_connections)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT name, setting::int FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        )
    finally:
        await conn.close()
    values = {row[0]: row[1] for row in rows}
    reserved = values.get("superuser_reserved_connections", 0)
    return values["max_connections"], reserved + values.get("reserved_connections", 0)


def ensure_fits(database_url: str, budget: ConnectionBudget) -> int:
    """Returns the connections available for the stack; StackError if it needs more."""
    max_connections, reserved = asyncio.run(_limits(database_url))
    available = max_connections - reserved
    if budget.at_postgres > available:
        raise StackError(
            f"PostgreSQL accepts {available} connections (max_connections {max_connections} - "
            f"{reserved} reserved) but the stack may open {budget.explain()}: lower "
            "DB_POOL_SIZE / DB_MAX_OVERFLOW, --workers or --replicas, put PgBouncer in front "
            "(--pgbouncer), or raise max_connections (docs/scaling.md, Connections)"
        )
    return available
