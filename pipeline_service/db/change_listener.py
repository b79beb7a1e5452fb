"""LISTEN for pipeline changes (NOTIFY is sent by a trigger, see migration 0001).

A dedicated asyncpg connection per process. If it is lost, every cached pipeline is
dropped and the cache is bypassed until the listener is back, so nothing stale is served.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "pipeline_changed"
# Shown in pg_stat_activity, so the listener's connection can be found (and, in tests, cut).
APPLICATION_NAME = "pipeline-change-listener"


class PipelineChangeListener:
    def __init__(
        self,
        dsn: str,
        on_change: Callable[[int | None], None],
        on_connected: Callable[[bool], None],
        check_every_s: float = 2.0,
    ) -> None:
        self._dsn = dsn
        self._on_change = on_change  # pipeline id, or None for "everything may have changed"
        self._on_connected = on_connected
        self._check_every_s = check_every_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pipeline-change-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._on_change(int(payload))
        except ValueError:
            self._on_change(None)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=5, server_settings={"application_name": APPLICATION_NAME}
                )
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _conn, closed=closed: closed.set())
                await conn.add_listener(CHANNEL, self._notified)
                # Changes made while we were not listening are unknown: start from scratch.
                self._on_change(None)
                self._on_connected(True)
                delay = 0.2
                while True:  # a closed connection wakes us at once; a dead server, this probe
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), self._check_every_s)
                    await conn.fetchval("SELECT 1", timeout=self._check_every_s)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("pipeline change listener lost (%s); reconnecting", error)
                self._on_connected(False)
                self._on_change(None)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
