"""/docs works without internet: the Swagger UI page of both services names no other host,
and every asset it names is served by the service itself."""

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager

from model_service.app import create_app as create_model_app
from tests.fixtures.services import ClientFactory

ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


class _Links(HTMLParser):
    """Every src= and href= of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def page_urls(html: str) -> list[str]:
    """The URLs a browser fetches for the page: its links and the document's `url: '...'`."""
    parser = _Links()
    parser.feed(html)
    return parser.urls + re.findall(r"\burl: '([^']*)'", html)


@pytest.fixture
async def model_client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_model_app()
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c,
    ):
        yield c


@pytest.fixture
async def pipeline_client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


@pytest.fixture(params=["pipeline_client", "model_client"])
def client(request: pytest.FixtureRequest) -> httpx.AsyncClient:
    return request.getfixturevalue(request.param)


async def test_docs_page_names_no_other_host(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    urls = page_urls(page.text)
    assert len(urls) == 4, urls  # css, favicon, js, the OpenAPI document
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
    assert "http://" not in page.text and "https://" not in page.text
    assert '"validatorUrl": null' in page.text  # Swagger UI would ask validator.swagger.io


async def test_every_url_of_the_page_is_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    for url in page_urls(page.text):
        answer = await client.get(url)
        assert answer.status_code == 200, url
        name = url.rsplit("/", 1)[-1]
        expected = ASSET_TYPES.get(name, "application/json")
        assert answer.headers["content-type"].startswith(expected), (url, answer.headers)
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content


async def test_docs_and_assets_stay_out_of_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/docs")]
    assert (await client.get("/redoc")).status_code == 404  # one docs page: Swagger UI


async def test_behind_a_path_prefix_the_page_names_prefixed_urls() -> None:
    """Served under a prefix (uvicorn --root-path /api behind a proxy), every URL keeps it."""
    transport = httpx.ASGITransport(app=create_model_app(), root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get("/docs")
    urls = page_urls(page.text)
    assert urls and all(url.startswith("/api/") for url in urls), urls
