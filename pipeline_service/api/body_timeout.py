"""A request body must arrive within REQUEST_BODY_TIMEOUT_S of its headers (408 after), so a
client that trickles an upload cannot hold a worker's memory and a slot forever. uvicorn has
no such limit; the time to send the headers is the edge's to bound (docs/operations.md)."""

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline_service.errors import BodyTooSlow
from service_kit.problems import RaisedProblem

WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyTimeout:
    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                    message = await receive()
            except TimeoutError:
                # Raised inside request parsing, so FastAPI passes it to our handlers.
                raise RaisedProblem(BodyTooSlow(self.timeout_s)) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
