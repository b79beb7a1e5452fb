"""Day partitions of processing_runs: made ahead, a run with no partition for its day still
stored (default partition) and moved to its day later, expired days dropped, one replica at a
time. Each test has a database of its own: retention drops days."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from pipeline_service.config import Settings, asyncpg_url
from pipeline_service.db.engine import create_engine
from pipeline_service.db.partitions import ADVISORY_LOCK, RunPartitions, partition_name
from pipeline_service.db.results import ResultsRepository
from tests.fixtures.database import fresh_database
from tests.fixtures.runs import insert_run

TODAY = datetime.now(UTC).date()


@pytest.fixture
def url(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
async def conn(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def engine(url: str) -> AsyncIterator[object]:
    engine = create_engine(asyncpg_url(url), pool_size=2, pre_ping=False)
    try:
        yield engine
    finally:
        await engine.dispose()


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


async def where(conn: asyncpg.Connection, run_id: int) -> str:
    return await conn.fetchval(
        "SELECT tableoid::regclass::text FROM processing_runs WHERE id = $1", run_id
    )


async def test_a_pass_makes_today_and_the_days_ahead_once(engine) -> None:
    partitions = RunPartitions(engine, ahead_days=5, retention_days=0)
    first = await partitions.maintain()
    assert not first.busy
    days = await partitions.days()
    assert [TODAY + timedelta(days=n) for n in range(6)] == [d for d in days if d >= TODAY]
    again = await partitions.maintain()
    assert (again.created, again.dropped, again.moved_runs) == ([], [], 0)


async def test_after_midnight_the_new_day_already_has_its_partition(engine, conn) -> None:
    """Made ahead: a run just after midnight lands in its own day, not the default one."""
    await RunPartitions(engine, ahead_days=1, retention_days=0).maintain()
    tomorrow = TODAY + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    run_id = await insert_run(conn, 1, created_at=start + timedelta(microseconds=1))
    assert await where(conn, run_id) == partition_name(tomorrow)
    last = await insert_run(conn, 1, created_at=start - timedelta(microseconds=1))
    assert await where(conn, last) == partition_name(TODAY)


async def test_a_run_whose_day_has_no_partition_is_stored_then_moved_to_its_day(
    engine, conn
) -> None:
    """After a long downtime (or a clock far off) the day has no partition: the insert still
    succeeds, into the default partition; the next pass gives the day its partition and moves
    the run there, unchanged, readable all along."""
    far = TODAY + timedelta(days=40)
    run_id = await insert_run(
        conn, 1, created_at=noon(far), boxes=((1.0, 2.0, 3.0, 4.0, 0.5, 1),) * 2
    )
    assert await where(conn, run_id) == "processing_runs_default"
    results = ResultsRepository(engine)
    before = await results.get(run_id)
    assert before is not None and len(before.detections) == 2

    done = await RunPartitions(engine, ahead_days=2, retention_days=0).maintain()
    assert far in done.created and done.moved_runs == 1
    assert await where(conn, run_id) == partition_name(far)
    assert await results.get(run_id) == before
    assert await conn.fetchval("SELECT count(*) FROM processing_runs_default") == 0


async def test_retention_drops_whole_expired_days_and_keeps_the_rest(engine, conn) -> None:
    old_days = [TODAY - timedelta(days=n) for n in (9, 8, 7)]
    kept_day = TODAY - timedelta(days=2)
    await RunPartitions(engine, ahead_days=1, retention_days=0).maintain()
    for day in [*old_days, kept_day]:  # no partitions yet: default, then moved
        await insert_run(conn, 1, created_at=noon(day))
    await RunPartitions(engine, ahead_days=1, retention_days=0).maintain()
    kept = [
        await insert_run(conn, 1, created_at=noon(kept_day)),
        await insert_run(conn, 1, status="failed"),
    ]
    expired_ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM processing_runs WHERE created_at < $1", noon(TODAY - timedelta(days=3))
        )
    ]
    assert len(expired_ids) == 3

    done = await RunPartitions(engine, ahead_days=1, retention_days=3).maintain()
    assert done.dropped == old_days and not done.busy
    days = await RunPartitions(engine, 1, 3).days()
    assert min(days) >= TODAY - timedelta(days=3)
    results = ResultsRepository(engine)
    assert [await results.get(i) for i in expired_ids] == [None] * 3
    assert all([await results.get(i) for i in kept])
    stale = await conn.fetch(
        "SELECT c.relname FROM pg_class c WHERE c.relname = ANY($1::text[])",
        [partition_name(d) for d in old_days],
    )
    assert stale == []  # dropped, not merely detached


async def test_an_expired_run_in_the_default_partition_is_deleted_not_moved(engine, conn) -> None:
    old = await insert_run(conn, 1, created_at=noon(TODAY - timedelta(days=30)))
    done = await RunPartitions(engine, ahead_days=1, retention_days=7).maintain()
    assert done.expired_in_default == 1 and TODAY - timedelta(days=30) not in done.created
    assert await ResultsRepository(engine).get(old) is None


async def test_one_replica_at_a_time(engine, url: str) -> None:
    """While another process holds the maintenance lock, a pass does nothing and says so."""
    other = await asyncpg.connect(url)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
            done = await RunPartitions(engine, ahead_days=9, retention_days=1).maintain()
            assert done.busy and (done.created, done.dropped) == ([], [])
    finally:
        await other.close()
    assert (await RunPartitions(engine, ahead_days=9, retention_days=1).maintain()).created


async def test_a_drop_waiting_behind_a_long_reader_gives_up_instead_of_stalling_inserts(
    engine, conn, url: str
) -> None:
    """DETACH needs a moment of ACCESS EXCLUSIVE; behind a long transaction that read the
    table it would wait, and every insert would queue behind it. The pass gives up after
    LOCK_TIMEOUT instead, and the next pass drops the day."""
    await RunPartitions(engine, ahead_days=1, retention_days=0).maintain()
    await insert_run(conn, 1, created_at=noon(TODAY - timedelta(days=5)))
    await RunPartitions(engine, ahead_days=1, retention_days=0).maintain()
    reader = await asyncpg.connect(url)
    try:
        async with reader.transaction():
            await reader.fetchval("SELECT count(*) FROM processing_runs")
            done = await RunPartitions(engine, ahead_days=1, retention_days=2).maintain()
            assert done.busy and done.dropped == []
            inserted = await asyncio.wait_for(insert_run(conn, 1), timeout=30)
            assert inserted
    finally:
        await reader.close()
    done = await RunPartitions(engine, ahead_days=1, retention_days=2).maintain()
    assert done.dropped == [TODAY - timedelta(days=5)]


async def test_a_pipeline_with_runs_cannot_be_removed_for_good(conn) -> None:
    """Runs keep their foreign key to pipelines: DELETE /pipelines is a soft delete, and a
    hard DELETE in psql of a pipeline that has runs is refused."""
    await insert_run(conn, 1)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute("DELETE FROM pipelines WHERE id = 1")


def test_an_idempotency_key_may_not_outlive_its_run() -> None:
    with pytest.raises(ValidationError, match="IDEMPOTENCY_TTL_S"):
        Settings(results_retention_days=1, idempotency_ttl_s=86_400)
    assert Settings(results_retention_days=2, idempotency_ttl_s=86_400).results_retention_days
    assert Settings(results_retention_days=0, idempotency_ttl_s=10**9)
