"""Security headers on every answer of both services.

A JSON API needs few: no MIME sniffing, no framing, no referrer, and a Content-Security-Policy
that allows nothing — an answer is data, never a page. The one HTML page, Swagger UI at /docs,
gets a policy of its own: scripts, styles and images from this origin only (its assets are
served under /docs/assets, service_kit/docs.py), plus the inline start-up script and inline
styles Swagger UI writes, and data: images (its icons). Chosen by the answer's content type,
so a new page or asset route needs no list kept in step.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
DOCS_POLICY = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'self'"
)
ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def headers_for(content_type: bytes) -> list[tuple[bytes, bytes]]:
    """The headers an answer of this content type gets."""
    policy = DOCS_POLICY if content_type.startswith(b"text/html") else API_POLICY
    return [*ALWAYS, (b"content-security-policy", policy)]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                added = headers_for(content_type)
                headers += [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
