"""httpx's API over aiohttp's connection pool, for the calls to the model service.

httpcore, httpx's own transport, polls every pooled socket on each request
(encode/httpcore#928): with the ~16 connections a worker keeps at concurrency 32 that cost
~0.6 ms of CPU per call, against ~0.2 ms through aiohttp (docs/performance.md).

The transport is httpx-aiohttp's. Its error mapping turns a refused connection into
`httpx.ConnectTimeout` (0.2.0), which would make a down model service look slow and
stop the connect retries, so aiohttp's errors are mapped again here as httpx's own transport
raises them.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# Most specific first: aiohttp's timeouts are also connection errors.
AIOHTTP_TO_HTTPX: list[tuple[type[Exception], type[httpx.TransportError]]] = [
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, unreachable: never sent
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
]


@contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as error:
        cause = error.__cause__
        for aiohttp_error, httpx_error in AIOHTTP_TO_HTTPX:
            if isinstance(cause, aiohttp_error):
                raise httpx_error(str(cause), request=request) from cause
        raise


class _RemappedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _httpx_errors(self._request):
            await self._stream.aclose()


class ModelTransport(AiohttpTransport):
    def __init__(self, max_connections: int = 256, keepalive_s: float = 4.0) -> None:
        # Idle connections are dropped before uvicorn's own 5 s keep-alive closes them, so a
        # request is not sent on a connection the server is closing.
        super().__init__(
            limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=keepalive_s)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _httpx_errors(request):
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _RemappedStream(response.stream, request)
        return response
