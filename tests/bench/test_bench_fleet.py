"""The bench's fleet stack (replicas behind HAProxy, each tier's processes found) and its
insert-ceiling mode (runs really stored, PostgreSQL's CPU read). Speed is never asserted."""

import asyncio
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from bench import fleet, inserts
from bench.stack import REPLICA_OFFSET, running_stack
from tests.bench.test_bench_cli import bench_row
from tests.fixtures.fleet import free_ports_in_a_row, ports_free, require

pytestmark = pytest.mark.subprocess


def fleet_port() -> int:
    """A port p with p+1 (model) and the replicas' p+10, p+11 free too."""
    while True:
        port = free_ports_in_a_row(2)
        if ports_free(port + REPLICA_OFFSET, 2):
            return port


def test_the_bench_stack_runs_a_fleet_and_finds_each_tier(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("haproxy")
    monkeypatch.setenv("DATABASE_URL", database_url)
    with running_stack(fleet_port(), 1, 1, data_dir=tmp_path / "bench", replicas=2) as stack:
        served = {
            httpx.get(f"{stack.url}/healthz", timeout=10).headers["x-served-by"] for _ in range(4)
        }
        direct = httpx.get(f"{stack.replica_url()}/readyz", timeout=10)
        groups = stack.processes()
    assert served == {"pipeline-1", "pipeline-2"}
    assert direct.status_code == 200 and direct.headers["x-served-by"] == "pipeline-1"
    assert groups["haproxy"] and groups["model"] and groups["postgres"]
    assert len(groups["pipeline"]) == 2  # one uvicorn process per replica (1 worker each)


def test_the_fleet_table_compares_with_the_direct_row() -> None:
    direct = bench_row(32, 60.0, 500.0, 20.0)
    behind = bench_row(32, 54.0, 520.0, 20.0)
    for row, haproxy_ms in ((direct, 0.0), (behind, 0.5)):
        row.cpu_ms.update(
            loop=4.0, threads=14.0, model=1.4, postgres=0.5, haproxy=haproxy_ms, wrk=1.0
        )
    line = fleet.table_row("HAProxy: 1 replica x 2 workers", behind, direct)
    assert "| 0.900 |" in line and "18.00 / 1.40 / 0.50 / 0.50 / 1.00" in line
    [capacity] = fleet.capacity_lines(behind)
    assert "pipeline 3.00" in capacity and "haproxy 0.08" in capacity


def test_the_insert_ceiling_counts_runs_postgres_really_stored(database_url: str) -> None:
    postmaster_pid = asyncio.run(inserts._postmaster_pid(database_url))
    if not psutil.pid_exists(postmaster_pid):
        pytest.skip("the test PostgreSQL runs on another machine: its CPU cannot be read")
    before = asyncio.run(_count_runs(database_url))
    level = inserts.measure(database_url, psutil.Process(postmaster_pid), 1, 2, seconds=0.5)
    stored = asyncio.run(_count_runs(database_url)) - before
    assert level.inserts > 0
    assert stored >= level.inserts  # plus the warm-up's
    # PostgreSQL's processes were found (their CPU, in clock ticks, may round to 0 here).
    assert inserts._postgres_cpu(psutil.Process(postmaster_pid))
    assert level.postgres_cpu_s >= 0 and level.client_cpu_s > 0


async def _count_runs(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM processing_runs"))
    finally:
        await conn.close()
