"""POST /process_image asked wrongly: the pipeline id, the image part, the body and its size.
Each gets a clear 4xx problem+json and leaves the database untouched. (What the image itself
may be: test_image_formats.py; hostile files: test_hostile_images.py; ambiguous requests and
bad text: test_client_mistakes.py.)"""

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from service_kit.errors import MalformedMultipart
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.problems import assert_actionable_problem
from tests.fixtures.runs import count_rows, new_pipeline
from tests.fixtures.services import ClientFactory

JPEG = jpeg_bytes()


@pytest.mark.parametrize("pipeline_id", ["999999", "2147483647"])
async def test_unknown_pipeline_is_404(pipeline_id: str, make_client: ClientFactory, db) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post(
            f"/process_image?pipeline_id={pipeline_id}", files={"image": ("a.jpg", JPEG)}
        )
    assert_actionable_problem(response, 404, pipeline_id)
    assert await count_rows(db) == before


async def test_deleted_pipeline_is_404_and_stores_nothing(make_client: ClientFactory, db) -> None:
    pipeline_id = await new_pipeline(db)
    async with make_client() as client:
        first = await client.post(
            "/process_image", params={"pipeline_id": pipeline_id}, files={"image": JPEG}
        )
        assert first.status_code == 200, first.text  # it works, and is now cached
        await db.execute("UPDATE pipelines SET is_active = false WHERE id = $1", pipeline_id)
        before = await count_rows(db)
        # The cached copy is dropped by the NOTIFY the UPDATE sends; allow it to arrive.
        for _ in range(100):
            response = await client.post(
                "/process_image", params={"pipeline_id": pipeline_id}, files={"image": JPEG}
            )
            if response.status_code != 200:
                break
            before = await count_rows(db)
    assert_actionable_problem(response, 404, str(pipeline_id))
    assert await count_rows(db) == before


# value: the word the answer says about it (None: pipeline_id left out)
BAD_PIPELINE_IDS = {
    None: "required",
    "abc": "integer",
    "-1": "greater than",
    "0": "greater than",
    "1.5": "integer",
    "99999999999999999999": "less than",
    "2147483648": "less than",
    "": "integer",
    "1e3": "integer",
    "\uff10": "integer",  # a full-width zero
}


@pytest.mark.parametrize("where", ["query", "form"])
@pytest.mark.parametrize(("value", "word"), list(BAD_PIPELINE_IDS.items()))
async def test_bad_pipeline_id_is_422(
    where: str, value: str | None, word: str, make_client: ClientFactory, db
) -> None:
    before = await count_rows(db)
    params = {} if value is None or where == "form" else {"pipeline_id": value}
    data = {} if value is None or where == "query" else {"pipeline_id": value}
    async with make_client() as client:
        response = await client.post(
            "/process_image", params=params, data=data, files={"image": ("a.jpg", JPEG)}
        )
    if where == "form" and value == "":
        word = "required"  # an empty form field is no field
    body = assert_actionable_problem(response, 422, "pipeline_id", word)
    assert body["errors"][0]["field"] == "pipeline_id"
    assert await count_rows(db) == before


REQUEST_SHAPES = {
    "multipart without image": dict(data={"pipeline_id": "1", "picture": "x"}),
    "multipart with image as a text field": dict(data={"pipeline_id": "1", "image": "abc"}),
    "JSON body instead of multipart": dict(
        content=json.dumps({"pipeline_id": 1, "image": "aGVsbG8="}),
        headers={"content-type": "application/json"},
    ),
    "no body at all": dict(),
}


@pytest.mark.parametrize("case", list(REQUEST_SHAPES))
async def test_request_without_an_image_file_is_422(
    case: str, make_client: ClientFactory, db
) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post("/process_image?pipeline_id=1", **REQUEST_SHAPES[case])
    assert_actionable_problem(response, 422, "image")
    assert await count_rows(db) == before


async def test_missing_image_part_is_422_naming_the_field(make_client: ClientFactory, db) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post("/process_image?pipeline_id=1", data={"other": "x"})
    body = assert_actionable_problem(response, 422, "image", "required")
    assert body["errors"][0]["field"] == "image"
    assert await count_rows(db) == before


class CountingBody:
    """A multipart body streamed in chunks; counts how many chunks the server pulled."""

    def __init__(self, payload_bytes: int, chunk: int = 64 * 1024) -> None:
        self.boundary = uuid.uuid4().hex
        self.head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="image"; '
            'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.chunk = chunk
        self.chunks = payload_bytes // chunk
        self.pulled = 0

    @property
    def length(self) -> int:
        return len(self.head) + self.chunks * self.chunk + len(self.tail)

    async def stream(self) -> AsyncIterator[bytes]:
        self.pulled += 1
        yield self.head
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"\xab" * self.chunk
        self.pulled += 1
        yield self.tail


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_upload_over_the_byte_limit_is_refused_without_reading_it(
    declared: bool, make_client: ClientFactory, db
) -> None:
    limit = 256 * 1024
    body = CountingBody(payload_bytes=64 * limit)  # 16 MiB offered
    headers = {"content-type": f"multipart/form-data; boundary={body.boundary}"}
    if declared:
        headers["content-length"] = str(body.length)
    before = await count_rows(db)
    async with make_client(max_upload_bytes=limit) as client:
        response = await client.post(
            "/process_image?pipeline_id=1", content=body.stream(), headers=headers
        )
    # the same answer whether Content-Length said so or the stream ran past the limit
    problem = assert_actionable_problem(response, 413, str(limit), "MAX_UPLOAD_BYTES")
    assert problem["type"] == "/problems/upload-too-large"
    if declared:
        assert body.pulled == 0  # refused from the header alone
    else:
        assert body.pulled <= limit // body.chunk + 2  # stopped just past the limit
    assert await count_rows(db) == before


async def test_a_broken_multipart_body_is_the_documented_400(
    make_client: ClientFactory, db
) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        for path in ("/process_image?pipeline_id=1", "/pipelines/preview"):
            response = await client.post(
                path,
                content=b"garbage",
                headers={"content-type": "multipart/form-data; boundary=b"},
            )
            assert response.status_code == 400, response.text
            assert response.json() == MalformedMultipart.example().body()
    assert await count_rows(db) == before


async def test_unknown_route_and_method_are_problems(make_client: ClientFactory) -> None:
    async with make_client() as client:
        assert_actionable_problem(await client.get("/no/such/thing"), 404)
        assert_actionable_problem(await client.get("/process_image"), 405)
