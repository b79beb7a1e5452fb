"""Checks every request gets before routing: a query parameter given twice is ambiguous (422,
not "the last one wins"), text in the query or the headers must be text (no NUL), and the
headers together must stay under MAX_HEADER_BYTES (431).

uvicorn refuses larger headers itself, with a bare 400 (h11: 16 KiB, httptools: 80 KiB); the
limit here is smaller, so a client is told which limit it hit (docs/operations.md, edge limits).
"""

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline_service.api.text import printable
from pipeline_service.errors import HeadersTooLarge
from service_kit.errors import FieldProblem, InvalidRequest, ProblemError
from service_kit.problems import answer


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest([FieldProblem(field, message)])


class RequestChecks:
    def __init__(self, app: ASGIApp, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    def _refusal(self, scope: Scope) -> ProblemError | None:
        headers = scope["headers"]
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if size > self.max_header_bytes:
            return HeadersTooLarge(size, self.max_header_bytes)
        for name, value in headers:
            if b"\x00" in value:
                header = printable(name.decode("latin-1"))
                return _invalid(header, "contains a NUL character (U+0000)")
        query = scope.get("query_string", b"").decode("latin-1")
        seen: set[str] = set()
        for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8"):
            label = printable(name)
            if name in seen:
                return _invalid(label, "given more than once; send it once")
            seen.add(name)
            if "\x00" in name or "\x00" in value:
                return _invalid(label, "contains a NUL character (U+0000)")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await answer(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)
