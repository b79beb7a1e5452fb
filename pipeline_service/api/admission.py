"""Load shedding: at most ADMIT_IMAGE_REQUESTS image requests in flight in this process.

Past the limit, POST /process_image and POST /pipelines/preview are answered at once with a
503 `overloaded` and Retry-After, before their body is read: queueing them would only make
every request slower (the CPU is already busy with the admitted ones) and hold memory for
uploads that wait. Everything else — /healthz, /readyz, reads — is never counted or refused.

Under overload a client that ignores Retry-After is refused as fast as it asks (thousands of
times a second), so a refusal must cost next to nothing: this is the outermost middleware,
its answer is prepared once (with the security headers every answer carries), and refusals
are counted in `http_requests_shed_total` instead of a log line and a latency observation
each — a log line per refusal would flood the logs exactly when they are read.
"""

import orjson
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline_service.errors import Overloaded
from pipeline_service.http_protocol import PACE_KEY
from service_kit.problems import PROBLEM_MEDIA_TYPE
from service_kit.requests import HEADER as REQUEST_ID
from service_kit.requests import SERVED_BY, client_request_id, default_replica_name
from service_kit.security_headers import headers_for

IMAGE_ROUTES = frozenset({"/process_image", "/pipelines/preview"})
RETRY_AFTER_S = 1

SHED = Counter(
    "http_requests_shed_total",
    "Image requests refused with 503 overloaded (ADMIT_IMAGE_REQUESTS reached), by route.",
    ["route"],
)


class AdmitImageRequests:
    def __init__(self, app: ASGIApp, limit: int, replica_name: str | None = None) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._served_by = replica_name.encode() if replica_name else None
        refusal = Overloaded(limit, limit, RETRY_AFTER_S)
        body = orjson.dumps(refusal.body())
        content_type = PROBLEM_MEDIA_TYPE.encode()
        self._headers: list[tuple[bytes, bytes]] = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in refusal.header_values().items()),
            *headers_for(content_type),
        ]
        self._status = refusal.status
        self._body = {"type": "http.response.body", "body": body}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in IMAGE_ROUTES
        ):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            SHED.labels(scope["path"]).inc()
            scope.setdefault("state", {})[PACE_KEY] = RETRY_AFTER_S
            if self._served_by is None:  # the port is known from the first request on
                self._served_by = default_replica_name(scope).encode()
            # Like every answer: the request id and the replica (service_kit.requests).
            own = [(REQUEST_ID, client_request_id(scope).encode()), (SERVED_BY, self._served_by)]
            await send(
                {
                    "type": "http.response.start",
                    "status": self._status,
                    "headers": [*self._headers, *own],
                }
            )
            await send(self._body)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
