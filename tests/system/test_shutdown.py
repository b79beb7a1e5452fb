"""SIGTERM during load, for real (uvicorn processes): requests in flight complete, later ones are
refused before any work, and no run is half written."""

import asyncio
import hashlib
import signal
import time
from pathlib import Path

import httpx
import pytest

from pipeline_service.config import asyncpg_url
from pipeline_service.db.engine import create_engine
from pipeline_service.db.runs import RunRepository
from pipeline_service.pipeline.definition import PipelineRef
from pipeline_service.pipeline.types import Box, RunContext, RunServices
from tests.fixtures.images import unique_jpeg
from tests.fixtures.processes import MODEL_APP, PIPELINE_APP, model_env, uvicorn_server

REQUESTS = 160
LAUNCH_EVERY_S = 0.01
SIGTERM_AFTER = 70  # requests launched before the signal


@pytest.mark.subprocess
async def test_sigterm_under_load_loses_and_half_writes_nothing(
    database_url: str, db, tmp_path: Path
) -> None:
    images = [unique_jpeg(50_000 + i) for i in range(REQUESTS)]
    outcomes: list[tuple[float, httpx.Response | Exception] | None] = [None] * REQUESTS
    with (
        uvicorn_server(MODEL_APP, model_env(latency_ms=300), tmp_path) as model,
        uvicorn_server(
            PIPELINE_APP,
            {"DATABASE_URL": database_url, "MODEL_SERVICE_URL": model.url},
            tmp_path,
        ) as service,
    ):

        async def one(index: int, client: httpx.AsyncClient) -> None:
            try:
                response = await client.post(
                    "/process_image?pipeline_id=1", files={"image": images[index]}
                )
                outcomes[index] = (time.monotonic(), response)
            except httpx.TransportError as error:
                outcomes[index] = (time.monotonic(), error)

        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
            tasks = []
            signalled_at = None
            for index in range(REQUESTS):
                if index == SIGTERM_AFTER:
                    service.terminate()
                    signalled_at = time.monotonic()
                tasks.append(asyncio.create_task(one(index, client)))
                await asyncio.sleep(LAUNCH_EVERY_S)
            await asyncio.gather(*tasks)
        exit_code = await asyncio.to_thread(service.wait, 60)
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
    assert exit_code in (0, -signal.SIGTERM), service.output()
    assert "Application shutdown complete" in service.output()
    assert signalled_at is not None

    answered = [(i, o[1]) for i, o in enumerate(outcomes) if isinstance(o[1], httpx.Response)]
    refused = [i for i, o in enumerate(outcomes) if isinstance(o[1], Exception)]
    completed_after_signal = [
        i
        for i, o in enumerate(outcomes)
        if isinstance(o[1], httpx.Response) and o[0] > signalled_at
    ]
    assert len(answered) + len(refused) == REQUESTS
    assert completed_after_signal, "nothing was in flight at SIGTERM; the test proves nothing"
    assert refused, "nothing was refused after SIGTERM; the test proves nothing"
    assert all(r.status_code == 200 for _, r in answered), [r.text for _, r in answered]

    shas = [hashlib.sha256(image).hexdigest() for image in images]
    rows = await db.fetch(
        "SELECT r.id, r.status, encode(r.image_sha256, 'hex') AS image_sha256, r.car_detected, "
        "  (SELECT count(*) FROM detections d WHERE d.run_id = r.id) AS boxes "
        "FROM processing_runs r WHERE encode(r.image_sha256, 'hex') = ANY($1::text[])",
        shas,
    )
    by_sha: dict[str, list] = {}
    for row in rows:
        by_sha.setdefault(row["image_sha256"], []).append(row)
    for index, response in answered:
        [row] = by_sha.pop(shas[index])  # exactly one run per answered request
        body = response.json()
        assert (row["id"], row["status"]) == (body["run_id"], "succeeded")
        assert row["car_detected"] == body["car_detected"]
        assert row["boxes"] == (1 if row["car_detected"] else 0)  # not half written
    assert by_sha == {}, "a request that got no answer left a run behind"


async def test_a_started_run_write_finishes_even_if_its_request_is_cancelled(
    database_url: str, db
) -> None:
    engine = create_engine(asyncpg_url(database_url), pool_size=2, pre_ping=True)
    runs = RunRepository(engine)
    image = unique_jpeg(60_000)
    ctx = RunContext(
        pipeline=PipelineRef(1, 1, "car-detection"),
        data=image,
        services=RunServices(model=None, recorder=runs),  # type: ignore[arg-type]
        image_sha256=hashlib.sha256(image).hexdigest(),
        detections=[Box(1, 2, 3, 4, 0.5, 1)],
    )
    try:
        request = asyncio.create_task(runs.record_success(ctx))
        await asyncio.sleep(0.001)  # the write has started
        request.cancel()  # e.g. a graceful-shutdown deadline cancels the request
        with pytest.raises(asyncio.CancelledError):
            await request
        await runs.drain(timeout_s=10)  # what the app's shutdown does before closing the pool
    finally:
        await engine.dispose()
    rows = await db.fetch(
        "SELECT r.status, count(d.position) AS boxes FROM processing_runs r "
        "LEFT JOIN detections d ON d.run_id = r.id "
        "WHERE r.image_sha256 = decode($1, 'hex') GROUP BY r.id, r.status",
        ctx.image_sha256,
    )
    assert [(r["status"], r["boxes"]) for r in rows] == [("succeeded", 1)]
