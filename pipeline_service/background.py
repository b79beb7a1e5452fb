"""A process's background jobs (the idempotency purge, the partition maintenance): one task
runs each at start and then on its own interval, one job at a time, so background work holds
at most one database connection at once (devstack/capacity.py counts one per process)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]


async def run_periodically(jobs: Sequence[PeriodicJob]) -> None:
    """Forever: every job that is due, in order; a failure is logged and the job tried again
    at its next turn."""
    loop = asyncio.get_running_loop()
    due = [loop.time()] * len(jobs)
    while True:
        for n, job in enumerate(jobs):
            if loop.time() < due[n]:
                continue
            try:
                await job.run()
            except Exception:
                log.exception("%s failed; trying again in %g s", job.name, job.every_s)
            due[n] = loop.time() + job.every_s
        await asyncio.sleep(max(0.0, min(due) - loop.time()))
