"""Three pipeline-service replicas behind a real HAProxy, for real (devstack's Fleet): the
load is spread and named, a pipeline change reaches every replica at once, a rolling restart
under load fails no request, and a replica killed under load costs only what was in flight on
it. Bounded in requests and time; the assertions are about correctness. The figures (delay of
a change, time to take a dead replica out) are printed for docs/scaling.md."""

import asyncio
import os
import signal
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.haproxy import EdgeLimits
from tests.fixtures.database import checking_connection
from tests.fixtures.fleet import Load, TestFleet, require, running_fleet
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.pipelines import AUTH, definition

pytestmark = pytest.mark.subprocess

REPLICAS = 3
CHANGES = 30
LIMITS = EdgeLimits()


def steps(width: int) -> list[dict[str, Any]]:
    return [
        {"type": "decode"},
        {"type": "resize", "params": {"width": width, "height": width}},
        {"type": "base64"},
        {"type": "detect"},
        {"type": "save"},
    ]


@pytest.fixture(scope="module")
def fleet(own_database_url: str) -> Iterator[TestFleet]:
    require("haproxy")
    with running_fleet(own_database_url, REPLICAS, LIMITS) as running:
        yield running


@pytest.fixture
async def own_db(own_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the fleet's database (this module's own: only its runs are in it)."""
    async with checking_connection(own_database_url) as conn:
        yield conn


@pytest.fixture(scope="module")
def small_jpeg() -> bytes:
    return jpeg_bytes(96, 64)


async def new_pipeline(fleet: TestFleet) -> tuple[int, dict[str, Any]]:
    body = definition(steps(32))
    async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
        created = await client.post("/pipelines", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    return created.json()["id"], body


async def max_run_id(db: asyncpg.Connection) -> int:
    return await db.fetchval("SELECT coalesce(max(id), 0) FROM processing_runs")


async def runs_since(db: asyncpg.Connection, after: int) -> dict[int, str]:
    rows = await db.fetch("SELECT id, status FROM processing_runs WHERE id > $1", after)
    return {row["id"]: row["status"] for row in rows}


async def test_requests_are_spread_and_each_answer_names_its_replica(
    fleet: TestFleet, small_jpeg: bytes
) -> None:
    async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
        answers = [
            await client.post("/process_image?pipeline_id=1", files={"image": small_jpeg})
            for _ in range(3 * REPLICAS)
        ]
    assert {a.status_code for a in answers} == {200}
    spread = Counter(a.headers["x-served-by"] for a in answers)
    assert set(spread) == {f"pipeline-{i}" for i in range(1, REPLICAS + 1)}, spread
    states = fleet.haproxy.states()
    assert {name: state.status for name, state in states.items()} == dict.fromkeys(spread, "UP")


async def test_edge_limits_answer_as_problems(fleet: TestFleet) -> None:
    async with httpx.AsyncClient(base_url=fleet.url, timeout=30) as client:
        too_large = await client.get("/healthz", headers={"x-padding": "a" * 9000})
    assert too_large.status_code == 431
    assert too_large.headers["content-type"] == "application/problem+json"
    assert too_large.json()["status"] == 431


async def test_a_change_through_one_replica_reaches_every_replica_within_a_second(
    fleet: TestFleet, small_jpeg: bytes
) -> None:
    """Each of 30 changes is made through one replica (in turn); every replica is then asked,
    over and over, until it runs the new version. The delay is from the change's answer to
    the end of the first answer with the new version: an upper bound."""
    pipeline_id, body = await new_pipeline(fleet)
    names = list(fleet.fleet.replicas)
    clients = {
        name: httpx.AsyncClient(base_url=fleet.replica_url(name), timeout=30) for name in names
    }

    async def version_at(name: str) -> int:
        response = await clients[name].post(
            "/process_image", params={"pipeline_id": pipeline_id}, files={"image": small_jpeg}
        )
        assert response.status_code == 200, response.text
        return int(response.json()["pipeline_version"])

    async def seen_after(name: str, version: int, changed_at: float) -> float:
        deadline = changed_at + 10
        while await version_at(name) != version:
            assert time.monotonic() < deadline, f"{name} never ran version {version}"
        return time.monotonic() - changed_at

    delays = []
    try:
        for change in range(CHANGES):
            for name in names:  # every replica has the current version cached
                await version_at(name)
            through = names[change % len(names)]
            body["steps"] = steps(32 if change % 2 else 48)
            changed = await clients[through].put(
                f"/pipelines/{pipeline_id}", json=body, headers=AUTH
            )
            changed_at = time.monotonic()
            assert changed.status_code == 200, changed.text
            version = changed.json()["version"]
            assert version == change + 2
            per_replica = await asyncio.gather(
                *(seen_after(name, version, changed_at) for name in names)
            )
            delays.append(max(per_replica))
    finally:
        for client in clients.values():
            await client.aclose()
    worst, median = max(delays), statistics.median(delays)
    print(f"\npropagation over {CHANGES} changes: worst {worst * 1000:.0f} ms, median "
          f"{median * 1000:.0f} ms, to all {len(names)} replicas")  # fmt: skip
    assert worst < 1.0, delays


async def test_rolling_restart_under_load_fails_no_request(
    fleet: TestFleet, small_jpeg: bytes, own_db: asyncpg.Connection
) -> None:
    db = own_db
    pipeline_id, _ = await new_pipeline(fleet)
    pids_before = {name: p.process.pid for name, p in fleet.fleet.processes.items()}
    before = await max_run_id(db)
    with Load(fleet.url, small_jpeg, pipeline_id, concurrency=16) as load:
        load.wait_for(50)
        fleet.fleet.rolling_restart(fleet.gate, fleet.say)
        finished_at = len(load.outcomes)
        load.wait_for(finished_at + 50)  # and the fleet serves on afterwards
        outcomes = load.stop()
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, failed[:5]
    assert all(p.process.pid != pids_before[n] for n, p in fleet.fleet.processes.items())
    runs = await runs_since(db, before)
    answered = [o.run_id for o in outcomes]
    assert len(runs) == len(outcomes) and set(runs) == set(answered)
    assert set(runs.values()) == {"succeeded"}
    served = Counter(o.served_by for o in outcomes)
    print(f"\nrolling restart under c=16: {len(outcomes)} requests, 0 failed, "
          f"{len(runs)} runs; served by {dict(served)}")  # fmt: skip
    assert set(served) == set(fleet.fleet.replicas)


async def test_a_killed_replica_costs_only_its_requests_in_flight(
    fleet: TestFleet, small_jpeg: bytes, own_db: asyncpg.Connection
) -> None:
    db = own_db
    pipeline_id, _ = await new_pipeline(fleet)
    victim = "pipeline-2"
    before = await max_run_id(db)
    with Load(fleet.url, small_jpeg, pipeline_id, concurrency=16) as load:
        load.wait_for(100)
        killed_at = time.monotonic()
        os.killpg(fleet.fleet.processes[victim].process.pid, signal.SIGKILL)
        while fleet.haproxy.states()[victim].status != "DOWN":
            assert time.monotonic() - killed_at < 30, "HAProxy never took the replica out"
            await asyncio.sleep(0.01)
        out_after = time.monotonic() - killed_at
        sent_to_it = fleet.haproxy.states()[victim].total
        seen = len(load.outcomes)
        load.wait_for(seen + 100)  # the rest of the fleet serves on
        outcomes = load.stop()
    assert fleet.haproxy.states()[victim].total == sent_to_it, "HAProxy sent it traffic once down"

    # In flight on it: sent to it before HAProxy took it out, and not answered before the
    # kill. (A request sent over a kept-alive connection to it in those few ms has its client
    # connection closed without an answer; the others get HAProxy's 502.)
    down_at = killed_at + out_after
    in_flight = [o for o in outcomes if o.started <= down_at and o.ended >= killed_at]
    failed = [o for o in outcomes if o.status != 200]
    print(f"\nSIGKILL of {victim} under c=16: out of rotation after {out_after * 1000:.0f} ms "
          f"(checks every {LIMITS.check_interval_s:g} s, fall {LIMITS.fall}); "
          f"{len(outcomes)} requests, {len(load.in_flight_at(killed_at))} in flight on the "
          f"fleet at the kill, {len(failed)} failed")  # fmt: skip
    assert out_after <= LIMITS.check_interval_s * LIMITS.fall + LIMITS.check_timeout_s
    assert all(o in in_flight for o in failed), [f for f in failed if f not in in_flight]
    assert len(failed) <= load.concurrency
    assert all(o.status in (None, 502) for o in failed), failed
    # Every 200 has its run; a request cut off may have stored its run before the kill.
    runs = await runs_since(db, before)
    answered = {o.run_id for o in outcomes if o.status == 200}
    assert answered <= set(runs)
    assert len(runs) - len(answered) <= len(failed)

    # Back to three replicas for whatever runs next.
    fleet.fleet.replace_exited(fleet.gate, fleet.say)
    fleet.fleet.wait_ready(victim)
    fleet.fleet.wait_in_rotation(victim)
