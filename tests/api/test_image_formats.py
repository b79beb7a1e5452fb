"""What the uploaded image may be: bad files, each answered with an actionable 4xx problem and
no row written (the request around it: test_process_image_input.py); and the image variants
and formats the README promises, each processed."""

import os

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
from tests.fixtures.runs import count_rows
from tests.fixtures.services import ClientFactory

JPEG = jpeg_bytes()
DEFAULT_PIXEL_LIMIT = 50_000_000


BAD_UPLOADS = {
    "empty file": (b"", 415, "empty"),
    "plain text named .jpg": (b"hello, this is not a picture\n" * 20, 415, "could not be decoded"),
    "truncated JPEG": (JPEG[: len(JPEG) // 2], 415, "truncated"),
    "random bytes": (os.urandom(4096), 415, "could not be decoded"),
    "JPEG cut off inside its header": (JPEG[:40], 415, None),
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
    body = assert_actionable_problem(response, status, "image")
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
