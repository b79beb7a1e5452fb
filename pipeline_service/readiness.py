"""Can this process do its work? Checked for GET /readyz apart from the image work.

Image requests hold the database pool and the model client's connections under load, and
keep the event loop busy; a probe queued behind them would time out and get a healthy, merely
busy, process taken out of rotation. So readiness pings PostgreSQL on one dedicated connection
(application_name `pipeline-readiness`) and the model service on a client of its own, from a
thread with an event loop of its own, every READINESS_INTERVAL_S; GET /readyz answers the
latest result at once (it waits only for the very first). A busy model service or database
then slows the checks, never the probe: measured under 256 uploading connections, a probe
that waited for a fresh check took up to 150 ms, the model service's own queue
(docs/performance.md, the overload row).
"""

import asyncio
import contextlib
import threading
from concurrent.futures import Future

import asyncpg
import httpx

from pipeline_service.errors import OK

APPLICATION_NAME = "pipeline-readiness"


class Readiness:
    def __init__(
        self,
        dsn: str,
        model_url: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: the model in-process
        transaction_pooler: bool = False,  # behind PgBouncer: no named prepared statements
        interval_s: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._statement_cache_size = 0 if transaction_pooler else 100
        self._model_url = model_url
        self._timeout_s = timeout_s
        self._conn: asyncpg.Connection | None = None
        self._http = httpx.AsyncClient(
            base_url=model_url,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            transport=transport,
        )
        self._interval_s = interval_s
        self._latest: dict[str, str] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="readiness", daemon=True
        )
        self._thread.start()
        self._first: Future[dict[str, str]] = asyncio.run_coroutine_threadsafe(
            self._check_forever(), self._loop
        )

    async def check(self) -> dict[str, str]:
        """The latest {"database": "ok" or why not, "model_service": ...}, at most
        READINESS_INTERVAL_S + READINESS_TIMEOUT_S old; never raises."""
        latest = self._latest
        if latest is None:
            return await asyncio.shield(asyncio.wrap_future(self._first))
        return latest

    async def _check_forever(self) -> dict[str, str]:
        """Resolves with the first result (the future `check` waits on), then keeps checking."""
        self._latest = await self._check()
        self._loop.create_task(self._again(), name="readiness-checks")
        return self._latest

    async def _again(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self._latest = await self._check()

    async def aclose(self) -> None:
        self._first.cancel()
        closing = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(closing), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5)

    async def _close(self) -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        await self._http.aclose()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=1)

    async def _check(self) -> dict[str, str]:
        database, model = await asyncio.gather(self._database(), self._model())
        return {"database": database, "model_service": model}

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self._dsn,
                        server_settings={"application_name": APPLICATION_NAME},
                        statement_cache_size=self._statement_cache_size,
                    )
                await self._conn.fetchval("SELECT 1")
        except Exception as error:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.terminate()
            if isinstance(error, TimeoutError):
                return f"no answer within {self._timeout_s:g} s"
            return f"PostgreSQL cannot be reached ({type(error).__name__})"
        return OK

    async def _model(self) -> str:
        try:
            response = await self._http.get("/healthz")
        except httpx.TimeoutException:
            return f"no answer from {self._model_url} within {self._timeout_s:g} s"
        except httpx.TransportError as error:
            return f"{self._model_url} cannot be reached ({type(error).__name__})"
        if response.status_code != 200:
            return f"{self._model_url}/healthz answered HTTP {response.status_code}"
        return OK
