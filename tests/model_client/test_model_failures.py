"""The model service down, slow or broken: 503/504/502, and the failed run is stored."""

from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.fixtures.processes import MODEL_APP, free_port, model_env, uvicorn_server
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory, model_transport


def answering(body: bytes, status: int = 200) -> httpx.ASGITransport:
    """A stand-in model service that always answers `body` (for malformed answers)."""

    async def predict(_request) -> Response:
        return Response(body, status_code=status, media_type="application/json")

    return httpx.ASGITransport(app=Starlette(routes=[Route("/predict", predict, methods=["POST"])]))


async def assert_failed_run(response, status: int, db, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]
    run = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", body["run_id"])
    assert run["status"] == "failed"
    assert run["error"] == body["detail"]
    assert run["car_detected"] is None
    assert run["pipeline_id"] == 1
    assert {"decode", "resize", "normalize", "base64"} <= set(run["timings_ms"])
    assert await db.fetchval("SELECT count(*) FROM detections WHERE run_id = $1", run["id"]) == 0


async def test_unreachable_model_service_is_503(make_client: ClientFactory, jpeg, db) -> None:
    port = free_port()  # nothing listens there
    async with make_client(
        model=None, model_service_url=f"http://127.0.0.1:{port}", model_connect_retries=1
    ) as client:
        response = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
    await assert_failed_run(response, 503, db, "cannot be reached", str(port))
    assert int(response.headers["Retry-After"]) >= 1  # every 503 says when to try again


@pytest.mark.subprocess
async def test_slow_model_service_is_504(
    make_client: ClientFactory, jpeg, db, tmp_path: Path
) -> None:
    with uvicorn_server(MODEL_APP, model_env(latency_ms=2000), tmp_path) as model:
        async with make_client(
            model=None, model_service_url=model.url, model_timeout_s=0.3
        ) as client:
            response = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
    await assert_failed_run(response, 504, db, "0.3 s", "MODEL_TIMEOUT_S")


async def test_model_service_5xx_is_502(make_client: ClientFactory, jpeg, db) -> None:
    async with make_client(model=model_transport(failure_rate=1.0)) as client:
        response = await client.post("/process_image?pipeline_id=1", files={"image": jpeg})
    await assert_failed_run(response, 502, db, "500")


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
        await assert_failed_run(response, 502, db, "not a list of boxes")


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
