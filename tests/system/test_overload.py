"""Overload with real processes: 256 connections upload to a two-worker pipeline service as
fast as it answers. Admitted requests get their runs, the rest are shed at once with a 503
`overloaded` and Retry-After, and /healthz and /readyz keep answering (the bench measures
how fast: docs/performance.md; this only holds a generous bound)."""

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from pipeline_service.config import Settings
from tests.fixtures.hostile_images import noisy
from tests.fixtures.http_load import (
    Answer,
    Load,
    keep_probing,
    keep_sending,
    multipart_request,
    read_answer,
)
from tests.fixtures.images import encode
from tests.fixtures.processes import MODEL_APP, PIPELINE_APP, Server, model_env, uvicorn_server

pytestmark = pytest.mark.subprocess

CONNECTIONS = 256
SECONDS = 5.0
# The target is 100 ms, measured by the bench's overload row on a quiet machine. This suite
# shares its cores with the load generator and with whatever else runs, so it only bounds
# "answered, never queued behind the images": 256 queued uploads would take far longer.
HEALTH_BOUND_S = 10.0


@pytest.fixture(scope="module")
def servers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("overload")
    with uvicorn_server(MODEL_APP, model_env(seed=1), logs) as model:
        env = {
            "DATABASE_URL": database_url,
            "MODEL_SERVICE_URL": model.url,
            "LOG_LEVEL": "WARNING",
            "ADMIT_IMAGE_REQUESTS": str(Settings.model_fields["admit_image_requests"].default),
        }
        with uvicorn_server(PIPELINE_APP, env, logs, workers=2, probe="/healthz") as pipeline:
            yield pipeline


async def test_overload_is_shed_and_health_checks_stay_fast(servers: Server, db) -> None:
    address = urlsplit(servers.url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    request = multipart_request("/process_image?pipeline_id=1", encode(noisy(960, 540), ".jpg"))
    runs_before = await db.fetchval("SELECT count(*) FROM processing_runs")
    load, probes = Load(), list[Answer]()
    until = time.monotonic() + SECONDS
    await asyncio.gather(
        *(keep_sending(host, port, request, until, load) for _ in range(CONNECTIONS)),
        keep_probing(host, port, ["/healthz", "/readyz"], until, 0.1, probes),
    )
    runs = await db.fetchval("SELECT count(*) FROM processing_runs") - runs_before

    statuses = [a.status for a in load.answers]
    shed = [a for a in load.answers if a.status == 503]
    ok = statuses.count(200)
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert ok > 0 and shed, (ok, len(shed))  # it was overloaded, and it still worked
    assert all(a.headers.get("retry-after") == "1" for a in shed)
    assert load.connection_errors == 0
    assert runs == ok  # every 200 has its run, nothing else was stored
    assert probes and all(p.status == 200 for p in probes), [p.status for p in probes]
    worst = max(p.seconds for p in probes)
    admitted = sorted(a.seconds for a in load.answers if a.status == 200)
    print(
        f"\n{ok} admitted, {len(shed)} shed ({len(shed) / len(statuses):.0%}); worst health "
        f"check {worst * 1000:.0f} ms over {len(probes)}; admitted p99 "
        f"{admitted[int(ok * 0.99)] * 1000:.0f} ms"
    )
    assert worst < HEALTH_BOUND_S


async def test_a_connection_that_ignores_retry_after_is_paced(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """After a 503 overloaded, nothing more is read from that connection for Retry-After
    seconds: a client that sends again at once waits on TCP instead of costing the server
    another upload to read and drop (the overload row of the bench shows the difference)."""
    logs = tmp_path_factory.mktemp("paced")
    with uvicorn_server(MODEL_APP, model_env(latency_ms=4000), logs) as model:
        env = {
            "DATABASE_URL": database_url,
            "MODEL_SERVICE_URL": model.url,
            "ADMIT_IMAGE_REQUESTS": "1",
            "MODEL_TIMEOUT_S": "10",
        }
        with uvicorn_server(PIPELINE_APP, env, logs, probe="/healthz") as pipeline:
            address = urlsplit(pipeline.url)
            host, port = address.hostname or "127.0.0.1", address.port or 80
            request = multipart_request("/process_image?pipeline_id=1", encode(noisy(64, 48)))
            busy = asyncio.create_task(_one_answer(host, port, request))  # holds the one slot
            await asyncio.sleep(1.0)

            reader, writer = await asyncio.open_connection(host, port)
            try:
                answers = []
                for _ in range(2):  # the second one at once, ignoring Retry-After
                    started = time.monotonic()
                    writer.write(request)
                    await writer.drain()
                    status, headers = await read_answer(reader)
                    answers.append((status, headers, time.monotonic() - started))
            finally:
                writer.close()
            fresh = await _one_answer(host, port, request)  # a new connection: not paced
            await busy

    (first, first_headers, first_s), (second, _, second_s) = answers
    assert first == second == 503 and first_headers["retry-after"] == "1"
    assert first_s < 0.9  # shed at once...
    assert second_s >= 0.9  # ...and the next request on that connection read a second later
    assert fresh.status == 503 and fresh.seconds < 0.9


async def _one_answer(host: str, port: int, request: bytes) -> Answer:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        started = time.monotonic()
        writer.write(request)
        await writer.drain()
        status, headers = await read_answer(reader)
    finally:
        writer.close()
    return Answer(status, headers, time.monotonic() - started)
