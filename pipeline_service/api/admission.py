"""Load shedding: at most ADMIT_IMAGE_REQUESTS image requests in flight in this process.

Past the limit, POST /process_image and POST /pipelines/preview are answered at once with a
503 `overloaded` and Retry-After, before their body is read: queueing them would only make
every request slower (the CPU is already busy with the admitted ones) and hold memory for
uploads that wait. Everything else — /healthz, /readyz, reads — is never counted or refused.
The default comes from the benchmark's overload row (docs/decisions/0014-admission-limit.md).
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline_service.errors import Overloaded
from service_kit.problems import answer

IMAGE_ROUTES = frozenset({"/process_image", "/pipelines/preview"})
RETRY_AFTER_S = 1


class AdmitImageRequests:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in IMAGE_ROUTES:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            scope.setdefault("state", {})["expected_refusal"] = True  # logged as INFO
            refusal = Overloaded(self.in_flight, self.limit, RETRY_AFTER_S)
            await answer(refusal)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
