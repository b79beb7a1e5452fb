"""A corpus of bad uploads, each answered with an actionable 4xx problem and no row written;
and the list of image variants and formats the README promises, each processed."""

import json
import os
import uuid
from collections.abc import AsyncIterator

import cv2
import pytest

from pipeline_service.pipeline.formats.jpeg import jpeg_is_complete
from tests.fixtures.images import (
    encode,
    jpeg_bytes,
    jpeg_declaring,
    jpeg_with_exif_orientation,
    photo,
    pil_jpeg,
)
from tests.fixtures.problems import assert_actionable_problem
from tests.fixtures.runs import count_rows, new_pipeline
from tests.fixtures.services import ClientFactory

JPEG = jpeg_bytes()
DEFAULT_PIXEL_LIMIT = 50_000_000


BAD_UPLOADS = {
    "empty file": (b"", 415, "empty"),
    "plain text named .jpg": (b"hello, this is not a picture\n" * 20, 415, "could not be decoded"),
    "truncated JPEG": (JPEG[: len(JPEG) // 2], 415, "truncated"),
    "random bytes": (os.urandom(4096), 415, "could not be decoded"),
    "JPEG header without data": (JPEG[:200], 415, None),
    "PNG signature only": (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 415, "could not be decoded"),
    "TIFF (no longer accepted)": (encode(photo(), ".tiff"), 415, "JPEG, PNG, WebP or BMP"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
async def test_bad_upload_is_refused_and_stores_nothing(
    case: str, make_client: ClientFactory, db
) -> None:
    data, status, words = BAD_UPLOADS[case]
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post(
            "/process_image?pipeline_id=1", files={"image": ("photo.jpg", data, "image/jpeg")}
        )
    body = assert_actionable_problem(response, status)
    if words:
        assert words in body["detail"]
    assert await count_rows(db) == before


async def test_header_declaring_30000x30000_is_refused_before_decoding(
    make_client: ClientFactory, db
) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post(
            "/process_image?pipeline_id=1", files={"image": jpeg_declaring(30000, 30000)}
        )
    body = assert_actionable_problem(response, 413)
    # The size comes from the header: the pixel data in this file is for 16x16 and could not
    # even be decoded as 30000x30000 (it would be a 415).
    assert "30000x30000" in body["detail"]
    assert str(DEFAULT_PIXEL_LIMIT) in body["detail"]
    assert "MAX_IMAGE_PIXELS" in body["detail"]
    assert await count_rows(db) == before


async def test_pixel_limit_in_the_message_is_the_configured_one(
    make_client: ClientFactory, db
) -> None:
    before = await count_rows(db)
    async with make_client(max_image_pixels=10_000) as client:
        response = await client.post(
            "/process_image?pipeline_id=1", files={"image": jpeg_bytes(200, 100)}
        )
    body = assert_actionable_problem(response, 413)
    assert "200x100" in body["detail"] and "10000 pixels" in body["detail"]
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
    problem = assert_actionable_problem(response, 413)
    assert str(limit) in problem["detail"] and "MAX_UPLOAD_BYTES" in problem["detail"]
    if declared:
        assert body.pulled == 0  # refused from the header alone
    else:
        assert body.pulled <= limit // body.chunk + 2  # stopped just past the limit
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
    body = assert_actionable_problem(response, 422)
    assert "image" in body["detail"]
    assert await count_rows(db) == before


PIPELINE_IDS = [
    "abc",
    "-1",
    "0",
    "1.5",
    "99999999999999999999",
    "",
    "1e3",
    "\uff10",
]  # the last: a full-width zero


@pytest.mark.parametrize("where", ["query", "form"])
@pytest.mark.parametrize("value", [None, *PIPELINE_IDS])
async def test_bad_pipeline_id_is_422(
    where: str, value: str | None, make_client: ClientFactory, db
) -> None:
    before = await count_rows(db)
    params = {} if value is None or where == "form" else {"pipeline_id": value}
    data = {} if value is None or where == "query" else {"pipeline_id": value}
    async with make_client() as client:
        response = await client.post(
            "/process_image", params=params, data=data, files={"image": ("a.jpg", JPEG)}
        )
    body = assert_actionable_problem(response, 422)
    assert "pipeline_id" in body["detail"]
    assert await count_rows(db) == before


async def test_unknown_pipeline_is_404(make_client: ClientFactory, db) -> None:
    before = await count_rows(db)
    async with make_client() as client:
        response = await client.post(
            "/process_image?pipeline_id=2147483647", files={"image": ("a.jpg", JPEG)}
        )
    body = assert_actionable_problem(response, 404)
    assert "2147483647" in body["detail"]
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
    body = assert_actionable_problem(response, 404)
    assert str(pipeline_id) in body["detail"]
    assert await count_rows(db) == before


# --- what must work --------------------------------------------------------------------------


def _gray() -> bytes:
    return encode(cv2.cvtColor(photo(), cv2.COLOR_BGR2GRAY), ".jpg")


VALID_IMAGES = {
    # name: (bytes, width, height) as the service must report them
    "baseline JPEG": (lambda: JPEG, 320, 240),
    "grayscale JPEG": (_gray, 320, 240),
    "progressive JPEG": (
        lambda: encode(photo(), ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        320,
        240,
    ),
    "CMYK JPEG": (lambda: pil_jpeg("CMYK", 120, 80), 120, 80),
    "1x1 JPEG": (lambda: encode(photo(1, 1), ".jpg"), 1, 1),
    # orientation 6: stored landscape, shown rotated 90° clockwise, so portrait
    "JPEG with EXIF orientation 6": (lambda: jpeg_with_exif_orientation(6, 64, 48), 48, 64),
    "PNG": (lambda: encode(photo(), ".png"), 320, 240),
    "PNG with alpha": (
        lambda: encode(cv2.cvtColor(photo(), cv2.COLOR_BGR2BGRA), ".png"),
        320,
        240,
    ),
    "WebP": (lambda: encode(photo(), ".webp"), 320, 240),
    "BMP": (lambda: encode(photo(), ".bmp"), 320, 240),
}


@pytest.mark.parametrize("case", list(VALID_IMAGES))
async def test_accepted_image_variant_is_processed(
    case: str, make_client: ClientFactory, db
) -> None:
    make, width, height = VALID_IMAGES[case]
    data = make()
    async with make_client() as client:
        response = await client.post(
            "/process_image?pipeline_id=1", files={"image": ("upload", data)}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["image"]["width"], body["image"]["height"]) == (width, height)
    run = await db.fetchrow("SELECT * FROM processing_runs WHERE id = $1", body["run_id"])
    assert run["status"] == "succeeded"
    assert (run["image_width"], run["image_height"], run["image_bytes"]) == (
        width,
        height,
        len(data),
    )


def test_truncation_check_tells_complete_from_cut_jpegs() -> None:
    progressive = encode(photo(), ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    for data in (JPEG, progressive, pil_jpeg("CMYK"), jpeg_with_exif_orientation(6)):
        assert jpeg_is_complete(data)
        assert jpeg_is_complete(data + b"\0\0 trailing bytes some cameras add")
        for cut in (len(data) // 3, len(data) // 2, len(data) - 2):
            assert not jpeg_is_complete(data[:cut])
