"""Refuse uploads over the byte limit without reading them into memory."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline_service.errors import UploadTooLarge
from service_kit.problems import RaisedProblem, answer


class UploadLimit:
    """A declared Content-Length over the limit is answered at once; a body that grows past it
    while streaming (chunked, or a lying header) is cut off with the same 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await answer(UploadTooLarge(self.max_bytes))(scope, receive, send)
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside request parsing, so FastAPI passes it to our handlers.
                    raise RaisedProblem(UploadTooLarge(self.max_bytes))
            return message

        await self.app(scope, limited_receive, send)
