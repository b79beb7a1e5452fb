"""A request whose client has gone away is not processed further: checked before the decode
and before the model call. Driven through the ASGI interface, where the server's
`http.disconnect` is what a closed connection looks like."""

import asyncio
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from pipeline_service.app import create_app
from pipeline_service.config import Settings
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.runs import count_rows
from tests.fixtures.services import model_transport

BOUNDARY = "gone-boundary"


def multipart(image: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class CountingModel:
    """The real model service, counting the requests it gets."""

    def __init__(self) -> None:
        self.app = model_transport().app  # type: ignore[attr-defined]
        self.predictions = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            self.predictions += 1
        await self.app(scope, receive, send)


async def _post_then_leave(database_url: str, connected_checks: int) -> tuple[int, CountingModel]:
    """POST /process_image whose client is still there for the first `connected_checks`
    checks, and gone after; returns the status the app answered."""
    model = CountingModel()
    settings = Settings(database_url=database_url)
    app = create_app(settings, model_transport=httpx.ASGITransport(app=model))
    body, polls, status = multipart(jpeg_bytes()), 0, 0

    async def receive() -> dict[str, Any]:
        nonlocal body, polls
        if body:
            message, body = {"type": "http.request", "body": body, "more_body": False}, b""
            return message
        polls += 1
        if polls <= connected_checks:
            await asyncio.Event().wait()  # still connected: nothing to receive
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/process_image",
        "raw_path": b"/process_image",
        "query_string": b"pipeline_id=1",
        "root_path": "",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    async with LifespanManager(app) as manager:
        await manager.app(scope, receive, send)
    return status, model


async def test_a_client_gone_before_the_decode_stops_the_run(database_url: str, db) -> None:
    before = await count_rows(db)
    status, model = await _post_then_leave(database_url, connected_checks=0)
    assert status == 499  # logged as nginx's "client closed request"; nobody reads it
    assert model.predictions == 0
    assert await count_rows(db) == before


async def test_a_client_gone_during_the_decode_gets_no_model_call(database_url: str, db) -> None:
    before = await count_rows(db)
    status, model = await _post_then_leave(database_url, connected_checks=1)
    assert status == 499
    assert model.predictions == 0
    assert await count_rows(db) == before


async def test_a_client_that_stays_gets_its_run(database_url: str, db) -> None:
    before = await count_rows(db)
    status, model = await _post_then_leave(database_url, connected_checks=100)
    assert status == 200 and model.predictions == 1
    assert (await count_rows(db))[0] == before[0] + 1
