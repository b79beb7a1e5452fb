"""GET /healthz and GET /readyz, with dependencies really stopped and started again."""

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from model_service.app import create_app as create_model_app
from model_service.config import ModelSettings
from pipeline_service.app import create_app
from pipeline_service.config import Settings
from tests.fixtures.processes import MODEL_APP, free_port, uvicorn_server
from tests.fixtures.services import ClientFactory, app_client, model_transport


async def test_healthz_on_both_services(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    model = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_model_app(ModelSettings())),
        base_url="http://model",
    )
    async with model:
        for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
            response = await model.get(path)
            assert (response.status_code, response.json()) == (200, body)


async def test_ready_when_database_and_model_answer(make_client: ClientFactory) -> None:
    async with make_client() as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "model_service": "ok"},
    }


async def test_not_ready_when_the_model_answers_errors(make_client: ClientFactory) -> None:
    """A model service that answers 500 to /healthz is not one to send traffic to."""

    async def broken(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with make_client(model=httpx.ASGITransport(app=broken)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["model_service"].endswith("/healthz answered HTTP 500")


async def _wait_for_status(client: httpx.AsyncClient, status: int) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        response = await client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


@pytest.mark.subprocess
async def test_readiness_follows_the_model_service(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with make_client(
        model=None, model_service_url=url, model_connect_retries=0, readiness_timeout_s=1.0
    ) as client:
        with uvicorn_server(MODEL_APP, {}, tmp_path, port=port):
            # the checks run every READINESS_INTERVAL_S: the next one sees the model
            assert (await _wait_for_status(client, 200)).status_code == 200

        down = await _wait_for_status(client, 503)  # the next check, within a second
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        body = down.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["model_service"] != "ok"
        assert "model_service is down" in body["detail"]
        assert "database" not in body["detail"]

        with uvicorn_server(MODEL_APP, {}, tmp_path, port=port):
            back = await _wait_for_status(client, 200)
            assert back.status_code == 200, back.text


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own (pgserver), which it may stop: the shared one it may not."""
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="readyz-pg-"), cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.subprocess
async def test_readiness_follows_the_database(own_postgres) -> None:
    import pgserver

    settings = Settings(database_url=own_postgres.get_uri(), readiness_timeout_s=2.0)
    async with app_client(create_app(settings, model_transport=model_transport())) as client:
        assert (await client.get("/readyz")).status_code == 200

        stop = ["-w", "-m", "fast", "stop"]
        await asyncio.to_thread(
            pgserver.pg_ctl, stop, pgdata=own_postgres.pgdata, user=own_postgres.system_user
        )
        down = await _wait_for_status(client, 503)  # the next check, within a second
        assert down.status_code == 503
        body = down.json()
        assert body["checks"]["model_service"] == "ok"
        assert body["checks"]["database"] != "ok"
        assert "database is down" in body["detail"]
        assert "model_service" not in body["detail"]

        await asyncio.to_thread(own_postgres.ensure_postgres_running)
        back = await _wait_for_status(client, 200)
        assert back.status_code == 200, back.text
