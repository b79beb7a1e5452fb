"""`ObserveRequests`: for every HTTP request, the request id (taken from X-Request-ID or
made up, echoed in the answer), the name of the replica that served it (X-Served-By), one
JSON log line, and the HTTP metrics.

Handlers add `pipeline_id` / `run_id` to the line by setting them on `request.state`.

The line is INFO, WARNING for a 5xx, and DEBUG for a successful probe (PROBE_ROUTES):
healthchecks and scrapes come every few seconds and would bury everything else, while
http_requests_total still counts them. LOG_LEVEL=DEBUG shows them; a failing probe shows
at INFO (4xx) or WARNING (5xx) anyway.
"""

import logging
import re
import socket
import time
import uuid

import orjson
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.errors import InternalError
from service_kit.logs import ACCESS_LOGGER, REQUEST_ID
from service_kit.metrics import UNMATCHED_ROUTE, observe_request
from service_kit.problems import PROBLEM_MEDIA_TYPE

log = logging.getLogger(ACCESS_LOGGER)
errors_log = logging.getLogger("service_kit.errors")

HEADER = b"x-request-id"
SERVED_BY = b"x-served-by"
# What we accept from a client: short, printable, nothing that could split a log line/header.
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
LOGGED_STATE = ("pipeline_id", "run_id")
PROBE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def client_request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is one we accept, otherwise a new one."""
    for name, value in scope["headers"]:
        if name == HEADER and VALID_REQUEST_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


def _route_templates(app: object) -> list[tuple[re.Pattern[str], str]]:
    """Every documented path template of the app, as (regex, template)."""
    openapi = getattr(app, "openapi", None)
    try:
        paths = openapi()["paths"] if callable(openapi) else {}
    except Exception:  # a label is not worth failing a request for
        errors_log.exception("cannot list the app's routes for metric labels")
        paths = {}
    return [(compile_path(template)[0], template) for template in paths]


def _level(route: str, status: int) -> int:
    if status >= 500:
        return logging.WARNING
    if route in PROBE_ROUTES and status < 400:
        return logging.DEBUG
    return logging.INFO


INTERNAL_ERROR = orjson.dumps(InternalError().body())


def default_replica_name(scope: Scope) -> str:
    """hostname:port; in Kubernetes the hostname is the pod's name."""
    server = scope.get("server")
    port = f":{server[1]}" if server and server[1] is not None else ""
    return socket.gethostname() + port


class ObserveRequests:
    def __init__(self, app: ASGIApp, replica_name: str | None = None) -> None:
        self.app = app
        self._templates: list[tuple[re.Pattern[str], str]] | None = None
        self._served_by = replica_name.encode() if replica_name else None

    def _route(self, scope: Scope) -> str:
        """The route template ("/results/{run_id}"): label values stay few, whatever the path."""
        route = getattr(scope.get("route"), "path", None)
        if route:
            return route
        # Answered before routing (an upload refused by its size) or by no route at all.
        if self._templates is None:
            self._templates = _route_templates(scope.get("app"))
        path = scope["path"]
        return next((t for regex, t in self._templates if regex.match(path)), UNMATCHED_ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = client_request_id(scope)
        if self._served_by is None:  # the port is known from the first request on
            self._served_by = default_replica_name(scope).encode()
        served_by = self._served_by
        token = REQUEST_ID.set(request_id)
        state = scope.setdefault("state", {})
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", ()),
                    (HEADER, request_id.encode()),
                    (SERVED_BY, served_by),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here, once, with the request id; answered here, and not re-raised, so
            # the server does not log the same traceback a second time.
            errors_log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            status = 500
            if not response_started:
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode())],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": INTERNAL_ERROR})
        finally:
            seconds = time.perf_counter() - started
            route = self._route(scope)
            observe_request(route, scope["method"], status, seconds)
            level = _level(route, status)
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        **{key: state.get(key) for key in LOGGED_STATE},
                    },
                )
            REQUEST_ID.reset(token)
