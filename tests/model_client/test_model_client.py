"""Model service trouble, for real over the network: bounded connect retries, no blind retry of
a timeout, and a circuit breaker that fails fast and half-opens after a pause."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from pipeline_service.circuit_breaker import BreakerState, CircuitBreaker, CircuitOpen
from pipeline_service.model_client import backoff_delays
from pipeline_service.model_transport import ModelTransport
from tests.fixtures.images import unique_jpeg
from tests.fixtures.processes import MODEL_APP, free_port, model_env, uvicorn_server
from tests.fixtures.services import ClientFactory, model_transport


class CountingTransport(ModelTransport):
    """The service's own network transport; counts the detection attempts that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += request.url.path == "/predict"  # not the readiness checks' /healthz
        return await super().handle_async_request(request)


class CountingASGI(httpx.ASGITransport):
    def __init__(self, **knobs: object) -> None:
        inner = model_transport(**knobs)
        super().__init__(app=inner.app)
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += request.url.path == "/predict"  # not the readiness checks' /healthz
        return await super().handle_async_request(request)


async def process(client: httpx.AsyncClient, seed: int) -> httpx.Response:
    return await client.post("/process_image?pipeline_id=1", files={"image": unique_jpeg(seed)})


async def assert_failed_run(db, response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{slug}"
    run = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", body["run_id"])
    assert run["status"] == "failed"
    assert run["error"] == body["detail"]
    assert run["car_detected"] is None
    assert await db.fetchval("SELECT count(*) FROM detections WHERE run_id = $1", run["id"]) == 0
    return body


# --- the breaker and the backoff on their own -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker) -> None:
    with pytest.raises(RuntimeError), breaker.call(lambda e: isinstance(e, RuntimeError)):
        raise RuntimeError("down")


def succeed(breaker: CircuitBreaker) -> None:
    with breaker.call(lambda e: True):
        pass


def test_breaker_opens_after_consecutive_failures_and_half_opens_after_the_pause() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    fail(breaker)
    fail(breaker)
    succeed(breaker)  # a success in between resets the count
    fail(breaker)
    fail(breaker)
    assert breaker.state == BreakerState.CLOSED
    fail(breaker)
    assert breaker.state == BreakerState.OPEN

    clock.now += 4
    with pytest.raises(CircuitOpen) as refused, breaker.call(lambda e: True):
        pass
    assert refused.value.retry_after_s == 6

    clock.now += 6  # the pause is over: one trial call goes through, others still wait
    with breaker.call(lambda e: True):
        assert breaker.state == BreakerState.HALF_OPEN
        with pytest.raises(CircuitOpen), breaker.call(lambda e: True):
            pass
    assert breaker.state == BreakerState.CLOSED


def test_a_failed_trial_opens_again_and_a_neutral_one_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    fail(breaker)
    clock.now += 5
    fail(breaker)  # the trial
    assert breaker.state == BreakerState.OPEN
    assert breaker.retry_after_s() == 5

    clock.now += 5
    with pytest.raises(ValueError), breaker.call(lambda e: isinstance(e, RuntimeError)):
        raise ValueError("says nothing about the dependency")
    assert breaker.state == BreakerState.HALF_OPEN
    succeed(breaker)  # the slot was freed, so this call is the next trial
    assert breaker.state == BreakerState.CLOSED


def test_threshold_zero_never_opens() -> None:
    breaker = CircuitBreaker(failure_threshold=0, reset_after_s=5)
    for _ in range(50):
        fail(breaker)
    assert breaker.state == BreakerState.CLOSED


def test_backoff_is_bounded_doubling_and_jittered() -> None:
    for _ in range(100):
        delays = backoff_delays(retries=6, first_s=0.1, cap_s=2.0)
        assert len(delays) == 6
        for n, delay in enumerate(delays):
            full = min(2.0, 0.1 * 2**n)
            assert full / 2 <= delay <= full
    assert backoff_delays(retries=0, first_s=0.1) == []


# --- for real -----------------------------------------------------------------------------------


async def test_refused_connection_is_retried_a_bounded_number_of_times_then_503(
    make_client: ClientFactory, db
) -> None:
    transport = CountingTransport()
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    async with make_client(
        model=transport,
        model_service_url=nothing_listens,
        model_connect_retries=3,
        model_retry_backoff_s=0.01,
    ) as client:
        response = await process(client, 1)
    body = await assert_failed_run(db, response, 503, "model-unavailable")
    assert "cannot be reached" in body["detail"]
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
    body = await assert_failed_run(db, response, 504, "model-timeout")
    assert "0.3 s" in body["detail"] and "MODEL_TIMEOUT_S" in body["detail"]
    assert transport.attempts == 1


@asynccontextmanager
async def hanging_up_server(after_bytes: int) -> AsyncIterator[str]:
    """A TCP server that reads `after_bytes` of each request, then closes the connection
    without answering: a model service that died while working on the request."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readexactly(after_bytes)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_a_connection_dropped_after_sending_is_503_and_not_retried(
    make_client: ClientFactory, db
) -> None:
    transport = CountingTransport()
    async with (
        hanging_up_server(after_bytes=1000) as url,
        make_client(model=transport, model_service_url=url, model_connect_retries=3) as client,
    ):
        response = await process(client, 4)
    body = await assert_failed_run(db, response, 503, "model-unavailable")
    assert "cannot be reached" in body["detail"]
    assert transport.attempts == 1  # the request may have reached the model: not sent twice


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (f"http://127.0.0.1:{free_port()}", httpx.ConnectError),  # nothing listens
        ("http://no-such-host.invalid", httpx.ConnectError),
    ],
    ids=["refused", "unknown host"],
)
async def test_transport_reports_connections_never_made_as_connect_errors(
    url: str, error: type[Exception]
) -> None:
    # httpx-aiohttp's own mapping says ConnectTimeout here; the retries depend on ConnectError.
    async with httpx.AsyncClient(transport=ModelTransport()) as client:
        with pytest.raises(error) as raised:
            await client.post(url + "/predict", content=b"{}")
    assert not isinstance(raised.value, httpx.TimeoutException)


async def test_transport_reports_a_read_that_outlasts_its_timeout_as_read_timeout() -> None:
    async with (
        hanging_up_server(after_bytes=10**9) as url,
        httpx.AsyncClient(transport=ModelTransport(), timeout=0.2) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url + "/predict", content=b"{}")


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
    body = await assert_failed_run(db, response, 502, "model-bad-response")
    assert says in body["detail"]
    assert transport.attempts == 1


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
