"""uvicorn's httptools protocol with a time limit for each request's headers.

uvicorn closes idle keep-alive connections (`--timeout-keep-alive`) but puts no limit on a
connection that sends its headers slowly, or nothing at all: each such client (slowloris)
holds a socket and a slot for as long as it likes. Here the headers of every request must be
complete within HEADER_TIMEOUT_S of the connection opening (or of the request's first byte
on a kept-alive connection); otherwise the client gets a 408 and the connection is closed.

uvicorn takes a protocol class by its import path, so this is how the pipeline service is
started everywhere (`make run`, the Docker image, the tests):

    uvicorn --http pipeline_service.http_protocol:HeaderTimeoutProtocol ...
"""

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pipeline_service.config import get_settings
from pipeline_service.errors import HeadersTooSlow

IMPORT_PATH = "pipeline_service.http_protocol:HeaderTimeoutProtocol"
PACE_KEY = "pace_connection_s"  # set in scope["state"] by whoever sheds the request


def _answer(timeout_s: float) -> bytes:
    body = orjson.dumps(HeadersTooSlow(timeout_s).body())
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout_s = get_settings().header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        pace_s = self.cycle.scope.get("state", {}).get(PACE_KEY) if self.cycle else None
        super().on_response_complete()
        if pace_s and not self.transport.is_closing():
            # A shed request (503 overloaded): read nothing more from this connection for
            # Retry-After seconds. A client that honours it loses nothing; one that sends at
            # once waits on TCP's flow control instead of making us read and drop its upload.
            self.flow.pause_reading()
            self.loop.call_later(pace_s, self._resume)

    def _resume(self) -> None:
        if not self.transport.is_closing():
            self.flow.resume_reading()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self._timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        self.transport.write(_answer(self._timeout_s))
        self.transport.close()
