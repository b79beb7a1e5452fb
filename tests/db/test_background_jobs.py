"""The background jobs of a process (pipeline_service/background.py): each runs at start and
again on its own interval, one at a time (so they hold at most one database connection, as
devstack/capacity.py counts), and a failing job neither stops nor delays the others."""

import asyncio
from collections.abc import Sequence

from pipeline_service.background import PeriodicJob, run_periodically


async def run_until(jobs: Sequence[PeriodicJob], enough: asyncio.Event) -> None:
    task = asyncio.create_task(run_periodically(jobs))
    try:
        async with asyncio.timeout(30):  # a bound on the wait, not a speed requirement
            await enough.wait()
        assert not task.done()  # nothing ended the loop
    finally:
        task.cancel()


async def test_jobs_run_at_start_then_again_one_at_a_time_whatever_fails() -> None:
    runs = {"slow": 0, "failing": 0}
    running = most_at_once = 0
    enough = asyncio.Event()

    def count(name: str) -> None:
        runs[name] += 1
        if min(runs.values()) >= 3:
            enough.set()

    async def slow() -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.02)
        running -= 1
        count("slow")

    async def failing() -> None:
        count("failing")
        raise RuntimeError("the database is down")

    jobs = [PeriodicJob("slow", 0.01, slow), PeriodicJob("failing", 0.01, failing)]
    await run_until(jobs, enough)
    assert most_at_once == 1


async def test_a_job_waits_for_its_own_interval() -> None:
    runs = {"often": 0, "rarely": 0}
    enough = asyncio.Event()

    def counting(name: str, every_s: float) -> PeriodicJob:
        async def run() -> None:
            runs[name] += 1
            if runs["often"] >= 5:
                enough.set()

        return PeriodicJob(name, every_s, run)

    await run_until([counting("often", 0.01), counting("rarely", 3600)], enough)
    assert runs["rarely"] == 1  # at start, and not again within the hour
