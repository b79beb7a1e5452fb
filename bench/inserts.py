"""python -m bench --inserts: how many runs a second one PostgreSQL stores, the insert path
alone (`RunRepository.record_success`: one statement, autocommit, one box like half the car
pipeline's runs), with no image work and no HTTP in front.

Client processes (2: one per core, as the service's workers) each keep `connections` inserts
in flight; levels from 1 connection to many. For each level: inserts/s, and CPU ms per insert
of PostgreSQL (every server process: backends, WAL writer, checkpointer) and of the clients.
Then the best level again with synchronous_commit=off: how much of the ceiling is waiting for
the WAL to reach the disk at each commit.
The database is the one at DATABASE_URL, else an embedded one in .data/bench-inserts.
"""

import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import asyncpg
import psutil
from sqlalchemy import event

from bench.stack import ROOT
from pipeline_service.config import asyncpg_url
from pipeline_service.db import migrate
from pipeline_service.db.engine import create_engine, libpq_url
from pipeline_service.db.runs import RunRepository
from pipeline_service.pipeline.definition import PipelineRef
from pipeline_service.pipeline.types import Box, RunContext, RunServices

DATA_DIR = ROOT / ".data" / "bench-inserts"
LEVELS = ((1, 1), (2, 4), (2, 16), (2, 32))  # (client processes, connections each)
WARMUP_S = 1.0
BOX = Box(412.0, 288.0, 186.0, 121.0, 0.87, 1)


@dataclass(frozen=True)
class Level:
    processes: int
    connections: int
    inserts: int
    seconds: float
    postgres_cpu_s: float
    client_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.inserts / self.seconds

    def cpu_ms(self, seconds: float) -> float:
        return seconds * 1000 / max(self.inserts, 1)


def _context(runs: RunRepository) -> RunContext:
    image = b"not decoded: only its size and digest are stored"
    return RunContext(
        pipeline=PipelineRef(1, 1, "car-detection"),
        data=image,
        services=RunServices(model=None, recorder=runs),  # type: ignore[arg-type]
        image_sha256=hashlib.sha256(image).hexdigest(),
        image_width=1920,
        image_height=1080,
        detections=[BOX],
        timings_ms={"decode": 5.0, "resize": 1.0, "normalize": 0.2, "base64": 1.4, "detect": 3.0},
    )


async def _insert_for(
    database_url: str, connections: int, seconds: float, barrier: Barrier, wait_for_flush: bool
) -> tuple[int, float]:
    engine = create_engine(asyncpg_url(database_url), connections, pre_ping=False, max_overflow=0)
    if not wait_for_flush:
        event.listen(engine.sync_engine, "connect", _commit_without_waiting)
    runs = RunRepository(engine)
    ctx = _context(runs)
    count = 0

    async def loop(until: float, counting: bool) -> None:
        nonlocal count
        while time.monotonic() < until:
            await runs.record_success(ctx)
            count += counting

    try:
        warm_until = time.monotonic() + WARMUP_S
        await asyncio.gather(*(loop(warm_until, False) for _ in range(connections)))
        await asyncio.to_thread(barrier.wait)  # the parent reads the CPU counters
        started = time.process_time()
        until = time.monotonic() + seconds
        await asyncio.gather(*(loop(until, True) for _ in range(connections)))
        cpu = time.process_time() - started
        await asyncio.to_thread(barrier.wait)  # and again, before any connection closes
    finally:
        await engine.dispose()
    return count, cpu


def _commit_without_waiting(dbapi_connection: Any, _record: Any) -> None:
    """synchronous_commit=off for this session, outside any transaction (so it stays)."""
    dbapi_connection.run_async(lambda conn: conn.execute("SET synchronous_commit = off"))


def _client(
    database_url: str,
    connections: int,
    seconds: float,
    barrier: Barrier,
    results: "multiprocessing.Queue[tuple[int, float]]",
    wait_for_flush: bool,
) -> None:
    work = _insert_for(database_url, connections, seconds, barrier, wait_for_flush)
    results.put(asyncio.run(work))


def _postgres_cpu(postmaster: psutil.Process) -> dict[int, float]:
    """CPU seconds of every server process, by pid."""
    seconds = {}
    for proc in [postmaster, *postmaster.children()]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            seconds[proc.pid] = times.user + times.system
    return seconds


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """A process that ended in between is not counted; one that started is, in full."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def measure(
    database_url: str,
    postmaster: psutil.Process,
    processes: int,
    connections: int,
    seconds: float,
    wait_for_flush: bool = True,
) -> Level:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results: multiprocessing.Queue[tuple[int, float]] = context.Queue()
    clients = [
        context.Process(
            target=_client,
            args=(database_url, connections, seconds, barrier, results, wait_for_flush),
        )
        for _ in range(processes)
    ]
    for client in clients:
        client.start()
    try:
        barrier.wait(timeout=120)
        postgres_before, started = _postgres_cpu(postmaster), time.monotonic()
        barrier.wait(timeout=seconds + 120)
        postgres_used = _used(postgres_before, _postgres_cpu(postmaster))
        elapsed = time.monotonic() - started
        outcomes = [results.get(timeout=60) for _ in clients]
    finally:
        for client in clients:
            client.join(timeout=30)
            if client.is_alive():
                client.kill()
    return Level(
        processes,
        connections,
        sum(count for count, _ in outcomes),
        elapsed,
        postgres_used,
        sum(cpu for _, cpu in outcomes),
    )


@contextlib.contextmanager
def database() -> Iterator[tuple[str, psutil.Process]]:
    """The database URL (migrated and seeded) and its server's postmaster."""
    url = os.environ.get("DATABASE_URL")
    if url:
        url = libpq_url(asyncpg_url(url))
        migrate.upgrade(url)
        migrate.seed(url)
        yield url, psutil.Process(asyncio.run(_postmaster_pid(url)))  # must run on this machine
        return
    from devstack.embedded_postgres import EmbeddedPostgres

    embedded = EmbeddedPostgres(DATA_DIR)
    with embedded as url:
        migrate.upgrade(url)
        migrate.seed(url)
        yield url, psutil.Process(asyncio.run(_postmaster_pid(url)))


async def _postmaster_pid(url: str) -> int:
    """The parent of our backend, read while the backend lives."""
    conn = await asyncpg.connect(url)
    try:
        return psutil.Process(int(await conn.fetchval("SELECT pg_backend_pid()"))).ppid()
    finally:
        await conn.close()


def run(seconds: float, levels: str | None = None) -> None:
    chosen: tuple[tuple[int, int], ...] = LEVELS
    if levels:  # "--concurrency 1x1,2x16": processes x connections
        chosen = tuple(
            (int(p), int(c)) for p, c in (level.split("x") for level in levels.split(","))
        )
    with database() as (url, postmaster):
        settings = asyncio.run(_settings(url))
        print(f"PostgreSQL {settings}; {seconds:g} s per level", flush=True)
        print(
            "\n| client processes x connections | inserts/s | CPU ms/insert postgres | "
            "CPU ms/insert clients | postgres alone on 1 core: inserts/s |\n"
            "| --- | ---: | ---: | ---: | ---: |"
        )
        best = None
        for processes, connections in chosen:
            level = measure(url, postmaster, processes, connections, seconds)
            postgres_ms = level.cpu_ms(level.postgres_cpu_s)
            print(
                f"| {processes} x {connections} | {level.per_second:,.0f} | {postgres_ms:.3f} "
                f"| {level.cpu_ms(level.client_cpu_s):.3f} | {1000 / postgres_ms:,.0f} |",
                flush=True,
            )
            if best is None or level.per_second > best.per_second:
                best = level
        assert best is not None
        # What waiting for the WAL flush at each commit costs: the same level without it.
        unflushed = measure(url, postmaster, best.processes, best.connections, seconds, False)
    print(
        f"\nceiling measured: {best.per_second:,.0f} inserts/s ({best.processes} x "
        f"{best.connections}), clients and PostgreSQL sharing {os.cpu_count()} cores; "
        f"with synchronous_commit=off at the same level: {unflushed.per_second:,.0f} inserts/s "
        f"(x {unflushed.per_second / best.per_second:.2f}; PostgreSQL "
        f"{unflushed.cpu_ms(unflushed.postgres_cpu_s):.3f} CPU ms/insert)"
    )


async def _settings(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('server_version', 'synchronous_commit', 'fsync', 'shared_buffers', 'wal_level')"
        )
    finally:
        await conn.close()
    return ", ".join(f"{row['name']}={row['setting']}" for row in rows)
