"""Security headers on every answer (JSON, problem, metrics, the Swagger page), a CSP that
allows nothing for data and what Swagger UI needs for /docs, and CORS off unless configured."""

import pytest

from tests.fixtures.services import ClientFactory, model_transport

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/results/999999"),  # a 404 problem
        ("GET", "/nowhere"),
        ("POST", "/process_image"),  # a 422 problem
        ("DELETE", "/steps"),  # a 405
    ],
)
async def test_every_answer_carries_the_security_headers(
    method: str, path: str, make_client: ClientFactory
) -> None:
    async with make_client() as client:
        response = await client.request(method, path)
    for name, value in ALWAYS.items():
        assert response.headers[name] == value, (path, name)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_the_docs_page_may_load_its_own_scripts_and_styles(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        response = await client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert "'self'" in directives["script-src"] and "'self'" in directives["style-src"]
    assert "http" not in policy  # the page's assets are local (service_kit/docs.py)
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_model_service_carries_them_too() -> None:
    import httpx

    async with httpx.AsyncClient(transport=model_transport(), base_url="http://m") as client:
        response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_cors_is_off_unless_origins_are_configured(make_client: ClientFactory) -> None:
    preflight = {
        "Origin": "https://console.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with make_client() as client:
        closed = await client.options("/pipelines", headers=preflight)
        plain = await client.get("/healthz", headers={"Origin": "https://console.example.com"})
    assert "access-control-allow-origin" not in closed.headers
    assert "access-control-allow-origin" not in plain.headers

    origins = "https://console.example.com, https://other.example.com"
    async with make_client(cors_allow_origins=origins) as client:
        allowed = await client.options("/pipelines", headers=preflight)
        read = await client.get("/healthz", headers={"Origin": "https://other.example.com"})
        stranger = await client.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://console.example.com"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert read.headers["access-control-allow-origin"] == "https://other.example.com"
    assert "etag" in read.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in stranger.headers
