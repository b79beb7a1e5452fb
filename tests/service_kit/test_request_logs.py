"""One JSON line per request, request ids in and out, errors logged once, no image bytes."""

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import orjson
import pytest

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.services import ClientFactory, app_client, model_transport

SECRET_PIXELS = b"SECRET-PIXELS-4f1c9e"  # marker inside the uploads: must never reach a log
TOKEN = "Bearer very-secret-token-77"


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def access(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "access"]


async def test_a_request_gives_one_line_with_its_fields(
    make_client: ClientFactory, jpeg: bytes, capsys
) -> None:
    async with make_client(model=model_transport(detection_probability=1.0)) as client:
        capsys.readouterr()
        response = await client.post(
            "/process_image?pipeline_id=1",
            files={"image": jpeg},
            headers={"X-Request-ID": "gateway-7f3a.42"},
        )
    lines = log_lines(capsys)
    mine = [line for line in access(lines) if line["path"] == "/process_image"]
    assert len(mine) == 1
    line = mine[0]
    assert response.headers["x-request-id"] == "gateway-7f3a.42"
    assert line["request_id"] == "gateway-7f3a.42"
    assert (line["level"], line["method"], line["status"]) == ("INFO", "POST", 200)
    assert (line["pipeline_id"], line["run_id"]) == (1, response.json()["run_id"])
    assert line["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", line["timestamp"])
    assert isinstance(line["pid"], int)


async def test_request_ids_are_made_up_when_missing_or_unusable(
    make_client: ClientFactory, capsys
) -> None:
    async with make_client() as client:
        capsys.readouterr()
        plain = await client.get("/steps")
        unusable = await client.get("/steps", headers={"X-Request-ID": "has spaces" + "x" * 200})
        too_long = await client.get("/steps", headers={"X-Request-ID": "a" * 129})
    ids = [r.headers["x-request-id"] for r in (plain, unusable, too_long)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 3
    assert [line["request_id"] for line in access(log_lines(capsys))] == ids


async def test_run_id_and_pipeline_id_are_in_the_line_of_a_failed_run(
    make_client: ClientFactory, jpeg: bytes, capsys
) -> None:
    async with make_client(model=model_transport(failure_rate=1.0)) as client:
        capsys.readouterr()
        response = await client.post(
            "/process_image?pipeline_id=1", files={"image": jpeg}, headers={"X-Request-ID": "r-1"}
        )
    assert response.status_code == 502
    lines = [line for line in log_lines(capsys) if line["request_id"] == "r-1"]
    request_line = [line for line in access(lines) if line["path"] == "/process_image"]
    assert len(request_line) == 1
    # the model service logged its side of the same request under the same id
    assert [line["path"] for line in access(lines)] == ["/predict", "/process_image"]
    assert request_line[0]["run_id"] == response.json()["run_id"]
    assert request_line[0]["pipeline_id"] == 1
    assert request_line[0]["level"] == "WARNING"
    causes = [line for line in lines if line["logger"] != "access"]
    assert len(causes) == 1, causes  # the cause, once
    assert "ModelBadResponse" in causes[0]["message"]


@asynccontextmanager
async def app_with_a_bug(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=database_url), model_transport=model_transport())

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("an unexpected bug")

    async with app_client(app) as client:
        yield client


async def test_an_unexpected_error_is_a_problem_and_its_traceback_is_logged_once(
    database_url: str, capsys
) -> None:
    async with app_with_a_bug(database_url) as client:
        capsys.readouterr()
        response = await client.get("/bug", headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "bug-1"
    assert "an unexpected bug" not in response.text  # no internals to the client
    lines = log_lines(capsys)
    with_traceback = [line for line in lines if "exc_info" in line]
    assert len(with_traceback) == 1
    assert "RuntimeError: an unexpected bug" in with_traceback[0]["exc_info"]
    assert with_traceback[0]["request_id"] == "bug-1"
    assert [line["status"] for line in access(lines)] == [500]


@pytest.mark.parametrize(
    "upload",
    [
        lambda: SECRET_PIXELS * 100,  # not an image: 415
        lambda: jpeg_bytes() + SECRET_PIXELS,  # trailing bytes after a valid JPEG: 200
    ],
)
async def test_no_image_bytes_and_no_secrets_in_the_logs(
    make_client: ClientFactory, capsys, upload: Callable[[], bytes]
) -> None:
    async with make_client(model=model_transport(failure_rate=0.5, seed=3)) as client:
        capsys.readouterr()
        for _ in range(4):
            await client.post(
                "/process_image?pipeline_id=1",
                files={"image": ("photo.jpg", upload(), "image/jpeg")},
                headers={"Authorization": TOKEN},
            )
    out = capsys.readouterr().out
    assert out.count('"logger":"access"') >= 4
    assert SECRET_PIXELS.decode() not in out
    assert "very-secret-token" not in out
