"""python -m bench --growth: the results API, the insert path and retention as the runs table
grows (issue 14).

One stack (`make run`'s, its own embedded PostgreSQL in .data/bench-growth, emptied first).
For each size (--growth-sizes, millions of runs, ascending): synthetic runs are added with
SQL (generate_series, spread evenly over --growth-days days ending today, one statement per
day), then measured, through HTTP, one request at a time:
- GET /results first page, limit 50 and 500, per filter (FILTERS), p50/p99;
- a 20-page walk (limit 50, no filter, following next_cursor), p50/max of its total time;
- GET /results/{id} of random ids, p50/p99;
- /process_image throughput at c=8 (wrk, 1920x1080) for --seconds;
- bytes per run: heap + indexes + TOAST of every partition, over the runs.
At the largest size, a retention pass drops the oldest day while wrk runs at c=8: how long
the DETACH + DROP took and what the concurrent requests saw (errors, max latency), next to
the same load without it.
Before all that, the same synthetic runs (--growth-baseline-runs) in a database at migration
0004 (the schema before partitioning) give the bytes-per-run baseline of the same run.
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from bench.stack import ROOT, running_stack
from bench.wrk import LoadResult, run_wrk
from pipeline_service.config import asyncpg_url
from pipeline_service.db import migrate
from pipeline_service.db.engine import create_engine
from pipeline_service.db.partitions import RunPartitions

DATA_DIR = ROOT / ".data" / "bench-growth"
CONCURRENCY = 8
LIMITS = (50, 500)
WALK_PAGES = 20

# Synthetic runs: 1 % failed (no car), the rest half with a car (one box), half without;
# pipeline 1 has nearly all of them, the second pipeline 1 % and never a failure, so some
# combinations below match nothing at all.
RUN_VALUES = """
SELECT ts, CASE WHEN i % 100 = 7 THEN {other} ELSE 1 END, 1,
       CASE WHEN i % 100 = 3 THEN 'failed' ELSE 'succeeded' END{status_cast},
       CASE WHEN i % 100 = 3 THEN NULL ELSE i % 2 = 0 END,
       {sha}, 250000 + i % 5000, 1920, 1080,
       '{{"decode": 5.0, "resize": 1.0, "normalize": 0.2, "base64": 1.4, "detect": 3.0}}',
       CASE WHEN i % 100 = 3 THEN 'The model service did not answer within 5 s.' END
       {boxes}
FROM generate_series($1::bigint, $2::bigint - 1) AS i,
     LATERAL (SELECT $3::timestamptz + (i - $1) * $4::interval) AS t (ts)
"""
INSERT_0005 = (
    "INSERT INTO processing_runs (created_at, pipeline_id, pipeline_version, status, "
    "car_detected, image_sha256, image_bytes, image_width, image_height, timings_ms, error, "
    "boxes) "
    + RUN_VALUES.format(
        other="$5",
        status_cast="::run_status",
        sha="decode(md5(i::text) || md5((i + 1)::text), 'hex')",
        boxes=", CASE WHEN i % 100 <> 3 AND i % 2 = 0 "
        "THEN ARRAY[412.0, 288.0, 186.0, 121.0, 0.87, 1]::float8[] END",
    )
)
INSERT_0004 = (
    "WITH run AS (INSERT INTO processing_runs (created_at, pipeline_id, pipeline_version, "
    "status, car_detected, image_sha256, image_bytes, image_width, image_height, timings_ms, "
    "error) "
    + RUN_VALUES.format(
        other="$5", status_cast="", sha="md5(i::text) || md5((i + 1)::text)", boxes=""
    )
    + " RETURNING id, car_detected) "
    "INSERT INTO detections (run_id, top_left_x, top_left_y, w, h, conf, label) "
    "SELECT id, 412.0, 288.0, 186.0, 121.0, 0.87, 1 FROM run WHERE car_detected"
)
BYTES_PER_RUN = """
SELECT sum(pg_total_relation_size(c.oid))::float8 / GREATEST((SELECT count(*) FROM
       processing_runs), 1)
FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1::text[])
   OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'processing_runs'::regclass)
"""


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float

    def cell(self) -> str:
        return f"{self.p50_ms:.1f} / {self.p99_ms:.1f}"


def _latency(samples: list[float]) -> Latency:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Latency(statistics.median(ordered) * 1000, p99 * 1000)


def filters(day: date, other: int) -> dict[str, dict[str, Any]]:
    """Each documented filter alone, and combinations, three of which match nothing."""
    hour = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    window = {"since": hour.isoformat(), "until": (hour + timedelta(hours=1)).isoformat()}
    return {
        "none": {},
        "pipeline_id (99 %)": {"pipeline_id": 1},
        "pipeline_id (1 %)": {"pipeline_id": other},
        "status=succeeded": {"status": "succeeded"},
        "status=failed": {"status": "failed"},
        "car_detected=true": {"car_detected": "true"},
        "car_detected=false": {"car_detected": "false"},
        "since+until (1 h)": window,
        "pipeline 1 % + car + succeeded": {
            "pipeline_id": other,
            "car_detected": "true",
            "status": "succeeded",
        },
        "1 h + status=failed": {**window, "status": "failed"},
        "empty: pipeline 1 % + failed": {"pipeline_id": other, "status": "failed"},
        "empty: failed + car_detected": {"status": "failed", "car_detected": "true"},
        "empty: unknown pipeline": {"pipeline_id": 999_999},
    }


def _timed(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 404):
        raise SystemExit(f"bench: GET {path} {params} answered {response.status_code}")
    return elapsed


def measure_reads(url: str, day: date, other: int, requests: int, max_id: int) -> list[str]:
    """The rows of the read table for this size."""
    rows = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for name, params in filters(day, other).items():
            cells = []
            for limit in LIMITS:
                _timed(client, "/results", {**params, "limit": limit})  # warm
                cells.append(
                    _latency(
                        [
                            _timed(client, "/results", {**params, "limit": limit})
                            for _ in range(requests)
                        ]
                    ).cell()
                )
            rows.append(f"| {name} | {cells[0]} | {cells[1]} |")
        walks = [_walk(client) for _ in range(max(3, requests // 20))]
        rows.append(
            f"| {WALK_PAGES}-page walk, limit 50 (total) | {statistics.median(walks) * 1000:.0f} "
            f"/ {max(walks) * 1000:.0f} (max) | |"
        )
        ids = [random.randint(1, max(max_id, 1)) for _ in range(requests * 2)]
        by_id = _latency([_timed(client, f"/results/{i}") for i in ids])
        rows.append(f"| GET /results/{{id}} (random ids) | {by_id.cell()} | |")
    return rows


def _walk(client: httpx.Client) -> float:
    started = time.perf_counter()
    cursor = None
    for _ in range(WALK_PAGES):
        body = client.get(
            "/results", params={"limit": 50, **({"cursor": cursor} if cursor else {})}
        ).json()
        cursor = body["next_cursor"]
        if cursor is None:
            break
    return time.perf_counter() - started


async def _one(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fill(url: str, add: int, days: int, other: int, insert: str, start_i: int) -> None:
    """`add` runs, evenly over `days` days ending today, each day one statement."""
    today = datetime.now(UTC).date()
    engine = create_engine(asyncpg_url(url), 1, pre_ping=False)
    try:
        partitions = RunPartitions(engine, ahead_days=1, retention_days=0)
        if insert is INSERT_0005:
            for n in range(days):
                await partitions.ensure(today - timedelta(days=n))
    finally:
        await engine.dispose()
    per_day = add // days
    conn = await asyncpg.connect(url)
    try:
        for n in range(days):
            day = today - timedelta(days=days - 1 - n)
            first = start_i + n * per_day
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            # today's runs stop a minute before now: all of them are in the past
            span = min(timedelta(days=1), datetime.now(UTC) - start - timedelta(minutes=1))
            step = span / max(per_day, 1)
            await conn.execute(insert, first, first + per_day, start, step, other)
        await conn.execute("ANALYZE processing_runs")
    finally:
        await conn.close()


def baseline_bytes_per_run(stack_database_url: str, days: int, runs: int) -> float:
    """Bytes per run of the schema before partitioning (migration 0004), same runs."""
    name = f"growth_0004_{uuid.uuid4().hex[:8]}"
    admin = stack_database_url
    asyncio.run(_one(admin, f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["database_url"] = url
        config.attributes["configure_logger"] = False
        command.upgrade(config, "0004")
        migrate.seed(url)
        asyncio.run(fill(url, runs, days, 1, INSERT_0004, 0))
        asyncio.run(_one(url, "VACUUM ANALYZE"))
        return float(asyncio.run(_one(url, BYTES_PER_RUN, ["processing_runs", "detections"])))
    finally:
        asyncio.run(_one(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def retention_pass(url: str, database_url: str, image: Path, seconds: float) -> list[str]:
    """Drop the oldest day while wrk posts images; compare with the same load without it."""
    quiet = run_wrk(url, image, CONCURRENCY, seconds)
    outcome: dict[str, Any] = {}

    async def drop_oldest() -> tuple[float, list[date], int]:
        engine = create_engine(asyncpg_url(database_url), 1, pre_ping=False)
        try:
            days = await RunPartitions(engine, 1, 0).days()
            oldest = days[0]
            runs = await _one(
                database_url,
                "SELECT count(*) FROM processing_runs WHERE created_at < $1",
                datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC) + timedelta(days=1),
            )
            keep = (datetime.now(UTC).date() - oldest).days - 1
            started = time.perf_counter()
            done = await RunPartitions(engine, 1, keep).maintain()
            return time.perf_counter() - started, done.dropped, runs
        finally:
            await engine.dispose()

    def later() -> None:
        time.sleep(seconds / 3)
        outcome["result"] = asyncio.run(drop_oldest())

    dropper = threading.Thread(target=later)
    dropper.start()
    loaded = run_wrk(url, image, CONCURRENCY, seconds)
    dropper.join()
    took, dropped, runs = outcome["result"]
    return [
        f"retention pass: dropped {dropped} ({runs:,} runs) in {took * 1000:.0f} ms "
        f"(the whole pass: partitions ahead, DETACH, DROP)",
        "| c=8 /process_image | req/s | errors | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        _load_row("without a retention pass", quiet),
        _load_row("with the retention pass", loaded),
    ]


def _load_row(name: str, load: LoadResult) -> str:
    return (
        f"| {name} | {load.requests_per_s:.1f} | {load.errors} | {load.p99_ms:.0f} "
        f"| {load.max_ms:.0f} |"
    )


def run(
    args: argparse.Namespace,
    images: Path,
    say: Callable[[str], None] = print,
    data_dir: Path = DATA_DIR,
) -> None:
    sizes = [float(s) for s in args.growth_sizes.split(",")]
    image = images / "parking_1920x1080.jpg"
    if not image.is_file():  # the tests' small run: whichever sample there is
        image = sorted(images.glob("parking_*.jpg"))[0]
    os.environ.pop("DATABASE_URL", None)  # the growth bench fills and empties its own
    # A fresh PostgreSQL every time: one kept from an earlier checkout could hold another
    # version of this branch's schema under the same revision.
    shutil.rmtree(data_dir, ignore_errors=True)
    report: list[str] = []
    with running_stack(args.port, args.workers, args.model_workers, data_dir) as stack:
        db = stack.database_url
        other = int(
            asyncio.run(
                _one(
                    db,
                    "INSERT INTO pipelines (name, description) VALUES ($1, 'growth bench') "
                    "RETURNING id",
                    f"growth-{uuid.uuid4().hex[:8]}",
                )
            )
        )
        asyncio.run(_one(db, "TRUNCATE processing_runs"))
        if args.growth_baseline:
            n = args.growth_baseline_runs
            before = baseline_bytes_per_run(db, args.growth_days, n)
            line = f"bytes per run, schema of migration 0004 ({n:,} runs, VACUUMed): {before:.0f}"
            say(line)
            report.append(line)
        stored = 0
        empty_throughput = None
        for millions in sizes:
            target = int(millions * 1_000_000)
            if target > stored:
                started = time.perf_counter()
                asyncio.run(fill(db, target - stored, args.growth_days, other, INSERT_0005, stored))
                stored = int(asyncio.run(_one(db, "SELECT count(*) FROM processing_runs")))
                say(f"filled to {stored:,} runs in {time.perf_counter() - started:.0f} s")
            asyncio.run(_one(db, "VACUUM ANALYZE processing_runs"))
            count = int(asyncio.run(_one(db, "SELECT count(*) FROM processing_runs")))
            size = asyncio.run(_one(db, BYTES_PER_RUN, ["processing_runs"])) if count else None
            max_id = int(asyncio.run(_one(db, "SELECT COALESCE(max(id), 1) FROM processing_runs")))
            middle = datetime.now(UTC).date() - timedelta(days=args.growth_days // 2)
            rows = measure_reads(stack.url, middle, other, args.growth_requests, max_id)
            load = run_wrk(stack.url, image, CONCURRENCY, args.seconds)
            if empty_throughput is None:
                empty_throughput = load.requests_per_s
            lines = [
                f"\n### {count:,} runs ({args.growth_days} days); bytes per run "
                + (f"{size:.0f} (VACUUMed)" if size else "-"),
                "",
                "| GET /results | limit 50: p50 / p99 ms | limit 500: p50 / p99 ms |",
                "| --- | ---: | ---: |",
                *rows,
                "",
                f"/process_image c={CONCURRENCY}: {load.requests_per_s:.1f} req/s, "
                f"{load.errors} errors, p99 {load.p99_ms:.0f} ms; x "
                f"{load.requests_per_s / empty_throughput:.2f} of the empty database's "
                f"{empty_throughput:.1f} req/s (same run)",
            ]
            say("\n".join(lines))
            report += lines
        if args.growth_retention:
            lines = retention_pass(stack.url, db, image, args.seconds)
            say("\n".join(lines))
            report += lines
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print("\n".join(report))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--growth", action="store_true", help="results API, inserts, retention as runs grow"
    )
    parser.add_argument("--growth-sizes", default="0,1", help="millions of runs, ascending")
    parser.add_argument("--growth-days", type=int, default=10, help="days the runs spread over")
    parser.add_argument("--growth-requests", type=int, default=100, help="requests per cell")
    parser.add_argument(
        "--growth-baseline-runs",
        type=int,
        default=1_000_000,
        help="runs in the migration-0004 database that gives the bytes-per-run baseline",
    )
    parser.add_argument(
        "--no-growth-baseline",
        dest="growth_baseline",
        action="store_false",
        help="skip the bytes-per-run baseline at migration 0004",
    )
    parser.add_argument(
        "--no-growth-retention",
        dest="growth_retention",
        action="store_false",
        help="skip the retention pass",
    )
