"""Only the admin token may change pipelines; reading, previewing and processing stay open."""

import json
from typing import Any

import pytest

from pipeline_service.config import Settings
from tests.fixtures.pipelines import AUTH, TOKEN, create, definition, pipeline_tables
from tests.fixtures.services import ClientFactory

MUTATIONS = [
    ("POST", "/pipelines"),
    ("PUT", "/pipelines/{id}"),
    ("DELETE", "/pipelines/{id}"),
]


async def _send(client, method: str, path: str, pipeline_id: int, headers: dict[str, Any]):
    body = None if method == "DELETE" else definition()
    return await client.request(method, path.format(id=pipeline_id), json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), MUTATIONS)
@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 401, "needs the admin token"),
        ({"Authorization": f"Basic {TOKEN}"}, 401, "needs the admin token"),
        ({"Authorization": "Bearer"}, 401, "needs the admin token"),
        ({"Authorization": "Bearer not-the-token"}, 403, "not the pipeline admin token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403, "not the pipeline admin token"),
        ({"Authorization": "Bearer tökén".encode()}, 403, "not the pipeline admin token"),
    ],
)
async def test_mutations_need_the_right_token(
    make_client: ClientFactory,
    db,
    method: str,
    path: str,
    headers: dict[str, str | bytes],
    status: int,
    words: str,
) -> None:
    async with make_client(pipeline_admin_token=TOKEN) as client:
        pipeline_id = (await create(client))["id"]
        before = await pipeline_tables(db)
        response = await _send(client, method, path, pipeline_id, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await pipeline_tables(db) == before


@pytest.mark.parametrize(("method", "path"), MUTATIONS)
@pytest.mark.parametrize("configured", [None, "", "   "])
async def test_without_a_configured_token_mutations_are_refused_with_a_hint(
    make_client: ClientFactory, db, method: str, path: str, configured: str | None
) -> None:
    before = await pipeline_tables(db)
    async with make_client(pipeline_admin_token=configured) as client:
        response = await _send(client, method, path, 1, AUTH)
    assert response.status_code == 403, response.text
    assert "set PIPELINE_ADMIN_TOKEN" in response.json()["detail"]
    assert await pipeline_tables(db) == before


BAD_REQUESTS = {
    "not JSON": ("POST", "/pipelines", b'{"name": '),
    "wrong shape": ("POST", "/pipelines", b'{"steps": "none"}'),
    "bad id": ("PUT", "/pipelines/0", b'{"name": "x", "steps": []}'),
    "bad If-Match": ("DELETE", "/pipelines/1", None),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"Authorization": "Bearer not-the-token"}, 403)]
)
async def test_without_the_token_a_bad_request_is_refused_before_it_is_validated(
    make_client: ClientFactory, db, case: str, headers: dict[str, str], status: int
) -> None:
    """Someone without the token learns nothing about what the body or the headers should
    be: the answer is the 401/403 the same request with a valid body gets."""
    method, path, body = BAD_REQUESTS[case]
    headers = {**headers, "content-type": "application/json", "If-Match": "not-a-tag"}
    before = await pipeline_tables(db)
    async with make_client(pipeline_admin_token=TOKEN) as client:
        response = await client.request(method, path, content=body, headers=headers)
        with_token = await client.request(method, path, content=body, headers={**headers, **AUTH})
    assert response.status_code == status, response.text
    assert "token" in response.json()["detail"]
    assert with_token.status_code == 422, with_token.text  # the token holder is told what's wrong
    assert await pipeline_tables(db) == before


def test_the_token_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_ADMIN_TOKEN", "from-env")
    token = Settings().pipeline_admin_token
    assert token is not None and token.get_secret_value() == "from-env"
    assert "from-env" not in repr(Settings())  # a secret: never printed in logs


async def test_reading_previewing_and_processing_need_no_token(
    make_client: ClientFactory, jpeg: bytes
) -> None:
    preview_form = {"definition": json.dumps({"steps": [{"type": "decode"}]})}
    async with make_client(pipeline_admin_token=TOKEN) as client:
        answers = [
            await client.get("/steps"),
            await client.get("/pipelines"),
            await client.get("/pipelines/1"),
            await client.get("/pipelines/1/versions"),
            await client.post("/pipelines/preview", data=preview_form, files={"image": jpeg}),
            await client.post("/process_image?pipeline_id=1", files={"image": jpeg}),
        ]
    assert [r.status_code for r in answers] == [200] * len(answers)


async def test_openapi_documents_the_bearer_scheme(make_client: ClientFactory) -> None:
    async with make_client() as client:
        spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["PipelineAdminToken"]["scheme"] == "bearer"
    assert spec["paths"]["/pipelines"]["post"]["security"] == [{"PipelineAdminToken": []}]
    assert "security" not in spec["paths"]["/pipelines"]["get"]
