"""The pipeline service when the model service is down, slow, hanging up or answering
nonsense: 503/504/502 problems, each failed run stored; bounded connect retries, no blind
retry of a timeout or of a request that may have arrived, and a circuit breaker that fails fast
and half-opens after a pause. For real over the network where it matters."""

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from pipeline_service.model_client import backoff_delays
from pipeline_service.model_transport import ModelTransport
from tests.fixtures.images import unique_jpeg
from tests.fixtures.model_stubs import answering, hanging_up_server
from tests.fixtures.processes import MODEL_APP, free_port, model_env, uvicorn_server
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory, model_transport


class CountingTransport(ModelTransport):
    """The service's own network transport; counts the attempts that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await super().handle_async_request(request)


class CountingASGI(httpx.ASGITransport):
    """The model service in-process; counts the detection attempts (the readiness checks'
    GET /healthz share this transport, and are not counted)."""

    def __init__(self, **knobs: object) -> None:
        inner = model_transport(**knobs)
        super().__init__(app=inner.app)
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/predict":
            self.attempts += 1
        return await super().handle_async_request(request)


async def process(client: httpx.AsyncClient, seed: int) -> httpx.Response:
    return await client.post("/process_image?pipeline_id=1", files={"image": unique_jpeg(seed)})


async def assert_failed_run(
    db, response: httpx.Response, status: int, slug: str, *words: str
) -> dict:
    """A problem of `status` and type `slug` whose detail says `words`; the run is stored as
    failed at the detect step of pipeline 1, with that detail as its error and no boxes."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]
    run = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", body["run_id"])
    assert run["status"] == "failed"
    assert run["error"] == body["detail"]
    assert run["car_detected"] is None
    assert run["pipeline_id"] == 1
    assert {"decode", "resize", "normalize", "base64"} <= set(run["timings_ms"])
    assert await db.fetchval("SELECT count(*) FROM detections WHERE run_id = $1", run["id"]) == 0
    return body


def test_backoff_is_bounded_doubling_and_jittered() -> None:
    for _ in range(100):
        delays = backoff_delays(retries=6, first_s=0.1, cap_s=2.0)
        assert len(delays) == 6
        for n, delay in enumerate(delays):
            full = min(2.0, 0.1 * 2**n)
            assert full / 2 <= delay <= full
    assert backoff_delays(retries=0, first_s=0.1) == []


async def test_refused_connection_is_retried_a_bounded_number_of_times_then_503(
    make_client: ClientFactory, db
) -> None:
    transport = CountingTransport()
    port = free_port()  # nothing listens there
    async with make_client(
        model=transport,
        model_service_url=f"http://127.0.0.1:{port}",
        model_connect_retries=3,
        model_retry_backoff_s=0.01,
    ) as client:
        response = await process(client, 1)
    await assert_failed_run(db, response, 503, "model-unavailable", "cannot be reached", str(port))
    assert int(response.headers["Retry-After"]) >= 1  # every 503 says when to try again
    assert transport.attempts == 4  # the first try and three retries


@pytest.mark.subprocess
async def test_a_timeout_is_not_retried_and_is_504(
    make_client: ClientFactory, db, tmp_path: Path
) -> None:
    transport = CountingTransport()
    with uvicorn_server(MODEL_APP, model_env(latency_ms=3000), tmp_path) as model:
        async with make_client(
            model=transport, model_service_url=model.url, model_timeout_s=0.3
        ) as client:
            response = await process(client, 2)
    await assert_failed_run(db, response, 504, "model-timeout", "0.3 s", "MODEL_TIMEOUT_S")
    assert transport.attempts == 1


async def test_a_connection_dropped_after_sending_is_503_and_not_retried(
    make_client: ClientFactory, db
) -> None:
    transport = CountingTransport()
    async with (
        hanging_up_server(after_bytes=1000) as url,
        make_client(model=transport, model_service_url=url, model_connect_retries=3) as client,
    ):
        response = await process(client, 4)
    await assert_failed_run(db, response, 503, "model-unavailable", "cannot be reached")
    assert transport.attempts == 1  # the request may have reached the model: not sent twice


@pytest.mark.parametrize(
    ("knobs", "says"),
    [({"failure_rate": 1.0}, "HTTP 500"), ({"bad_answer_rate": 1.0}, "not a list of boxes")],
    ids=["5xx", "bad answer"],
)
async def test_5xx_or_a_bad_answer_is_502_and_not_retried(
    knobs: dict, says: str, make_client: ClientFactory, db
) -> None:
    transport = CountingASGI(**knobs)
    async with make_client(model=transport) as client:
        response = await process(client, 3)
    await assert_failed_run(db, response, 502, "model-bad-response", says)
    assert transport.attempts == 1


async def test_garbage_answers_are_502(make_client: ClientFactory, jpeg, db) -> None:
    garbage = [
        b"<html>oops</html>",
        b'{"no_boxes": []}',
        orjson.dumps({"boxes": [[1, 2, 3]]}),
        orjson.dumps({"boxes": [[1, 2, 3, 4, 1.5, 1]]}),  # conf above 1
        orjson.dumps({"boxes": [[1, 2, -3, 4, 0.5, 1]]}),  # negative width
        orjson.dumps({"boxes": [["a", 2, 3, 4, 0.5, 1]]}),
        orjson.dumps({"boxes": [[1, 2, 3, 4, 0.5, 1.5]]}),  # label not an integer
    ]
    for body in garbage:
        async with make_client(model=answering(body)) as client:
            response = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
        await assert_failed_run(db, response, 502, "model-bad-response", "not a list of boxes")


@pytest.mark.subprocess
async def test_circuit_opens_fails_fast_and_recovers_through_a_trial(
    make_client: ClientFactory, db, tmp_path: Path
) -> None:
    transport = CountingTransport()
    port = free_port()
    reset_s = 0.5
    async with make_client(
        model=transport,
        model_service_url=f"http://127.0.0.1:{port}",
        model_connect_retries=0,
        model_breaker_failures=3,
        model_breaker_reset_s=reset_s,
    ) as client:
        for seed in range(3):
            await assert_failed_run(db, await process(client, 10 + seed), 503, "model-unavailable")
        assert transport.attempts == 3

        # Open: many requests at once are answered at once, none reaches the model service,
        # and each is still recorded (the pipeline was found).
        answers = await asyncio.gather(*(process(client, 20 + i) for i in range(10)))
        for answer in answers:
            body = await assert_failed_run(db, answer, 503, "model-circuit-open")
            assert "paused" in body["detail"]
            assert answer.headers["Retry-After"] == "1"  # what is left of 0.5 s, rounded up
        assert transport.attempts == 3

        # After the pause one trial goes through; the service is still down: open again.
        await asyncio.sleep(reset_s + 0.05)
        await assert_failed_run(db, await process(client, 40), 503, "model-unavailable")
        assert transport.attempts == 4
        await assert_failed_run(db, await process(client, 41), 503, "model-circuit-open")
        assert transport.attempts == 4

        with uvicorn_server(MODEL_APP, model_env(), tmp_path, port=port):
            await asyncio.sleep(reset_s + 0.05)
            trial = await process(client, 50)
            assert trial.status_code == 200, trial.text
            after = await asyncio.gather(*(process(client, 60 + i) for i in range(5)))
        assert [a.status_code for a in after] == [200] * 5
        assert transport.attempts == 10


@pytest.mark.subprocess
async def test_slow_model_opens_the_circuit_instead_of_piling_up_requests(
    make_client: ClientFactory, db, tmp_path: Path
) -> None:
    transport = CountingTransport()
    with uvicorn_server(MODEL_APP, model_env(latency_ms=3000), tmp_path) as model:
        async with make_client(
            model=transport,
            model_service_url=model.url,
            model_timeout_s=0.2,
            model_breaker_failures=2,
            model_breaker_reset_s=60,
        ) as client:
            for seed in range(2):
                await assert_failed_run(db, await process(client, 70 + seed), 504, "model-timeout")
            answers = await asyncio.gather(*(process(client, 80 + i) for i in range(20)))
    for answer in answers:
        await assert_failed_run(db, answer, 503, "model-circuit-open")
        assert 59 <= int(answer.headers["Retry-After"]) <= 60
    assert transport.attempts == 2  # the 20 did not wait on the slow service


@pytest.mark.subprocess
async def test_real_model_service_over_http(
    make_client: ClientFactory, jpeg, db, tmp_path: Path
) -> None:
    """Both services as real processes talking HTTP with keep-alive; seeded 50/50 draw."""
    before, _ = await count_rows(db)
    with uvicorn_server(MODEL_APP, model_env(seed=3), tmp_path) as model:
        async with make_client(model=None, model_service_url=model.url) as client:
            answers = [
                (await client.post("/process_image?pipeline_id=1", files={"image": jpeg})).json()
                for _ in range(10)
            ]
    outcomes = {a["car_detected"] for a in answers}
    assert outcomes == {True, False}
    runs, _ = await count_rows(db)
    assert runs - before == 10
