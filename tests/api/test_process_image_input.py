"""Every kind of bad request gets a clear 4xx problem+json and leaves the database untouched."""

import os

import pytest

from service_kit.errors import MalformedMultipart
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["type"]
    assert isinstance(body["detail"], str) and len(body["detail"]) > 10
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]
    return body


@pytest.fixture
async def client(make_client: ClientFactory):
    async with make_client(max_upload_bytes=200_000) as client:
        yield client


async def test_unknown_pipeline_is_404(client, jpeg: bytes, db) -> None:
    before = await count_rows(db)
    response = await client.post("/process_image?pipeline_id=999999", files={"image": jpeg})
    assert_problem(response, 404, "999999")
    assert await count_rows(db) == before


@pytest.mark.parametrize(
    ("value", "expected_word"),
    [
        ("abc", "integer"),
        ("-1", "greater than"),
        ("0", "greater than"),
        ("1.5", "integer"),
        ("99999999999999999999", "less than"),
        ("2147483648", "less than"),
        ("", "integer"),
    ],
)
async def test_bad_pipeline_id_is_422(
    client, jpeg: bytes, db, value: str, expected_word: str
) -> None:
    before = await count_rows(db)
    as_query = await client.post(
        "/process_image", params={"pipeline_id": value}, files={"image": jpeg}
    )
    body = assert_problem(as_query, 422, "pipeline_id", expected_word)
    assert body["errors"][0]["field"] == "pipeline_id"
    as_form = await client.post(
        "/process_image", data={"pipeline_id": value}, files={"image": jpeg}
    )
    assert_problem(as_form, 422, "pipeline_id")
    assert await count_rows(db) == before


async def test_missing_pipeline_id_is_422(client, jpeg: bytes, db) -> None:
    before = await count_rows(db)
    response = await client.post("/process_image", files={"image": jpeg})
    assert_problem(response, 422, "pipeline_id", "required")
    assert await count_rows(db) == before


async def test_pipeline_id_given_twice_differently_is_422(client, jpeg: bytes) -> None:
    response = await client.post(
        "/process_image?pipeline_id=1", data={"pipeline_id": "2"}, files={"image": jpeg}
    )
    assert_problem(response, 422, "twice")


async def test_missing_image_is_422(client, db) -> None:
    before = await count_rows(db)
    response = await client.post("/process_image?pipeline_id=1", data={"other": "x"})
    body = assert_problem(response, 422, "image", "required")
    assert body["errors"][0]["field"] == "image"
    assert await count_rows(db) == before


async def test_json_body_instead_of_multipart_is_422(client, db) -> None:
    before = await count_rows(db)
    response = await client.post("/process_image?pipeline_id=1", json={"image": "aGVsbG8="})
    assert_problem(response, 422, "image")
    assert await count_rows(db) == before


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jpg", b""),
        ("notes.jpg", b"this is a plain text file, not a picture\n" * 20),
        ("noise.jpg", os.urandom(5000)),
        ("half.jpg", None),
    ],
)
async def test_undecodable_upload_is_415(client, jpeg: bytes, db, name: str, content) -> None:
    if content is None:
        content = jpeg[:40]  # a JPEG cut off inside its header
    before = await count_rows(db)
    response = await client.post(
        "/process_image?pipeline_id=1", files={"image": (name, content, "image/jpeg")}
    )
    assert_problem(response, 415, "image")
    assert await count_rows(db) == before


async def test_upload_over_the_limit_is_413(client, db) -> None:
    before = await count_rows(db)
    response = await client.post(
        "/process_image?pipeline_id=1",
        files={"image": ("big.jpg", b"\xff" * 300_000, "image/jpeg")},
    )
    problem = assert_problem(response, 413, "200000", "MAX_UPLOAD_BYTES")
    assert problem["type"] == "/problems/upload-too-large"
    assert await count_rows(db) == before


async def test_streamed_upload_over_the_limit_is_413(client, db) -> None:
    """No Content-Length (chunked): the body is cut off while it streams in."""

    async def chunks():
        boundary = b"--b0undary"
        yield (
            boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        )
        for _ in range(40):
            yield b"\xff" * 10_000
        yield b"\r\n" + boundary + b"--\r\n"

    before = await count_rows(db)
    response = await client.post(
        "/process_image?pipeline_id=1",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b0undary"},
    )
    problem = assert_problem(response, 413, "MAX_UPLOAD_BYTES")
    assert problem["type"] == "/problems/upload-too-large"  # as when Content-Length says so
    assert await count_rows(db) == before


async def test_a_broken_multipart_body_is_the_documented_400(client, db) -> None:
    before = await count_rows(db)
    for path in ("/process_image?pipeline_id=1", "/pipelines/preview"):
        response = await client.post(
            path, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert response.status_code == 400, response.text
        assert response.json() == MalformedMultipart.example().body()
    assert await count_rows(db) == before


async def test_unknown_route_and_method_are_problems(client) -> None:
    assert_problem(await client.get("/no/such/thing"), 404)
    assert_problem(await client.get("/process_image"), 405)
