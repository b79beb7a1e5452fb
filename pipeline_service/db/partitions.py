"""The day partitions of processing_runs (migration 0005): made ahead of time, expired ones
dropped, by the service itself (docs/decisions/0024-runs-partitioned-by-day.md).

Every process runs `maintain()` at startup and every PARTITION_MAINTENANCE_S (a background
job, pipeline_service/background.py); each step
takes a transaction-level advisory lock first (works through PgBouncer in transaction mode)
and a replica that finds it taken skips the pass: another one is doing it.

- Ahead: today (UTC) and RUN_PARTITIONS_AHEAD_DAYS after it each get a partition. A new one
  is made as a plain table and then ATTACHed, which takes only SHARE UPDATE EXCLUSIVE on
  processing_runs: inserts and reads go on meanwhile.
- A run whose day has no partition (the service stopped for longer than the days made
  ahead, a clock far off) lands in processing_runs_default instead of failing; the next pass
  makes its day's partition and moves it there, in the same transaction.
- Retention (RESULTS_RETENTION_DAYS > 0): a day older than that is DETACHed and DROPped:
  no row is deleted one by one, nothing is left to vacuum. The short ACCESS EXCLUSIVE lock
  DETACH needs (CONCURRENTLY is not allowed next to a default partition) is bounded by
  LOCK_TIMEOUT: rather than let inserts queue behind it, the pass gives up and tries again
  next time.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

PARENT = "processing_runs"
DEFAULT_PARTITION = "processing_runs_default"
NAME = re.compile(r"processing_runs_p(\d{8})")
ADVISORY_LOCK = 14_0005  # any constant, the same in every process
LOCK_TIMEOUT = "200ms"


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class MaintenancePass:
    created: list[date] = field(default_factory=list)
    moved_runs: int = 0  # from the default partition into their day's
    dropped: list[date] = field(default_factory=list)
    expired_in_default: int = 0
    busy: bool = False  # another process held the lock, or a lock wait timed out


class RunPartitions:
    def __init__(self, engine: AsyncEngine, ahead_days: int, retention_days: int) -> None:
        self._engine = engine
        self.ahead_days = ahead_days
        self.retention_days = retention_days

    async def maintain(self, today: date | None = None) -> MaintenancePass:
        """One pass: partitions ahead (and for runs in the default one), then retention."""
        done = MaintenancePass()
        async with self._engine.connect() as conn:
            if today is None:
                today = (
                    await conn.execute(text("SELECT (now() AT TIME ZONE 'UTC')::date"))
                ).scalar_one()
            await conn.commit()
            try:
                await self._make_ahead(conn, today, done)
                if self.retention_days:
                    await self._expire(conn, today - timedelta(days=self.retention_days), done)
            except _Busy:
                done.busy = True
        return done

    async def ensure(self, day: date) -> bool:
        """Give `day` its partition if it has none (a backfill, the growth bench); True if
        made. Waits for the maintenance lock rather than skipping."""
        async with self._engine.connect() as conn:
            if day in await _days(conn):
                return False
            await conn.commit()
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
            await _create(conn, day)
            await conn.commit()
        return True

    async def days(self) -> list[date]:
        """The days that have a partition, oldest first."""
        async with self._engine.connect() as conn:
            return await _days(conn)

    async def _make_ahead(self, conn: AsyncConnection, today: date, done: MaintenancePass) -> None:
        wanted = {today + timedelta(days=n) for n in range(self.ahead_days + 1)}
        async with _locked(conn):
            wanted |= set(
                (
                    await conn.execute(
                        text(
                            f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date "
                            f"FROM {DEFAULT_PARTITION}"
                        )
                    )
                ).scalars()
            )
            missing = sorted(wanted - set(await _days(conn)))
        oldest_kept = today - timedelta(days=self.retention_days) if self.retention_days else None
        for day in missing:
            if oldest_kept is not None and day < oldest_kept:
                continue  # expired: deleted from the default partition below
            async with _locked(conn):
                done.moved_runs += await _create(conn, day)
            done.created.append(day)
            log.info("made partition %s", partition_name(day))

    async def _expire(
        self, conn: AsyncConnection, oldest_kept: date, done: MaintenancePass
    ) -> None:
        for day in await _days(conn):
            if day >= oldest_kept:
                break
            async with _locked(conn):
                name = partition_name(day)
                await conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {name}"))
                await conn.execute(text(f"DROP TABLE {name}"))
            done.dropped.append(day)
            log.info("dropped partition %s (RESULTS_RETENTION_DAYS)", name)
        async with _locked(conn):
            result = await conn.execute(
                text(f"DELETE FROM {DEFAULT_PARTITION} WHERE created_at < :oldest"),
                {"oldest": day_start(oldest_kept)},
            )
            done.expired_in_default = result.rowcount


class _Busy(Exception):
    pass


class _locked:
    """A transaction holding the maintenance lock, with lock waits bounded; _Busy if the
    lock is taken (another replica is at it) or a lock wait ran out."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        await self._conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        got = (
            await self._conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK}
            )
        ).scalar_one()
        if not got:
            await self._conn.rollback()
            raise _Busy

    async def __aexit__(self, kind: object, error: BaseException | None, _tb: object) -> None:
        if error is None:
            await self._conn.commit()
            return
        await self._conn.rollback()
        if isinstance(error, DBAPIError) and "lock timeout" in str(error.orig):
            raise _Busy from error


async def _days(conn: AsyncConnection) -> list[date]:
    names = (
        await conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                f"WHERE i.inhparent = '{PARENT}'::regclass"
            )
        )
    ).scalars()
    found = (NAME.fullmatch(name) for name in names)
    return sorted(datetime.strptime(m[1], "%Y%m%d").date() for m in found if m)


async def _create(conn: AsyncConnection, day: date) -> int:
    """Make `day`'s partition as a table, move its runs out of the default partition, attach
    it. Returns how many runs moved."""
    name, start = partition_name(day), day_start(day)
    bounds = {"start": start, "end": start + timedelta(days=1)}
    strays = await conn.execute(
        text(
            f"SELECT EXISTS (SELECT FROM {DEFAULT_PARTITION} "
            "WHERE created_at >= :start AND created_at < :end)"
        ),
        bounds,
    )
    if strays.scalar_one():
        # ATTACH lets queries go on (SHARE UPDATE EXCLUSIVE), and a query planned before it
        # commits would not see the new partition yet, but would see the rows gone from the
        # default one: a listing would miss them. Moving runs (rare: after a long downtime)
        # therefore stops the table for the moment it takes.
        await conn.execute(text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
    await conn.execute(
        text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    moved = await conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            "WHERE created_at >= :start AND created_at < :end RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    # Bounds as literals: DDL takes no parameters.
    await conn.execute(
        text(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{bounds['start'].isoformat()}') TO ('{bounds['end'].isoformat()}')"
        )
    )
    return moved.rowcount
