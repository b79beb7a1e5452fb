"""Reduced-size JPEG decode: chosen only when it cannot cost output size, close pixels, and the
run still records the original image size."""

import struct

import cv2
import numpy as np
import pytest

from pipeline_service.pipeline.budget import PipelineLimits
from pipeline_service.pipeline.compiler import compile_pipeline
from pipeline_service.pipeline.definition import PipelineDefinition, PipelineRef, StepDefinition
from pipeline_service.pipeline.steps.image import Decode, decode_flag
from pipeline_service.pipeline.types import RunContext, RunServices
from tests.fixtures.images import jpeg_bytes
from tests.fixtures.services import ClientFactory


def textured_jpeg(width: int, height: int) -> bytes:
    """A photo-like JPEG: gradients plus blocky seeded noise (detail that scaling can lose)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack(
        [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)]
    ).astype(np.uint8)
    noise = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    noise = cv2.resize(cv2.GaussianBlur(noise, (3, 3), 0), (width, height), cv2.INTER_NEAREST)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.addWeighted(image, 0.6, noise, 0.4, 0), [cv2.IMWRITE_JPEG_QUALITY, 90]
    )
    assert ok
    return encoded.tobytes()


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment holding only the Orientation tag."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8)  # big-endian TIFF header, IFD at offset 8
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    payload = b"Exif\x00\x00" + tiff + ifd + struct.pack(">I", 0)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def decode_then_resize(data: bytes, reduce: str, width: int, height: int):
    pipeline = compile_pipeline(
        limits=PipelineLimits(),
        definition=PipelineDefinition(
            PipelineRef(1, 1, "test"),
            (
                StepDefinition("decode", {"reduce": reduce}),
                StepDefinition("resize", {"width": width, "height": height}),
            ),
        ),
    )
    decode, resize = pipeline.steps
    ctx = RunContext(pipeline.ref, data, RunServices(None, None))  # type: ignore[arg-type]
    decoded = decode.apply(data, ctx)
    return decoded, resize.apply(decoded, ctx), ctx


@pytest.mark.parametrize(
    ("size", "target", "scale"),
    [
        ((3840, 2160), (640, 640), 2),  # 2160 < 4 x 640
        ((1920, 1080), (640, 640), 1),  # 1080 < 2 x 640: a full decode
        ((5120, 5120), (640, 640), 8),
        ((2600, 2600), (640, 640), 4),
        ((2600, 1300), (1300, 200), 1),  # the larger target side counts (EXIF may turn it)
        ((3840, 2160), (400, 200), 4),
    ],
)
def test_decode_scale_is_the_largest_that_still_covers_the_target(
    size: tuple[int, int], target: tuple[int, int], scale: int
) -> None:
    assert decode_flag("color", b"\xff\xd8\xff\xe0", size, target)[1] == scale


def test_only_jpeg_and_only_before_a_resize_is_reduced() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    assert decode_flag("color", png, (5120, 5120), (640, 640)) == (cv2.IMREAD_COLOR, 1)
    assert decode_flag("color", b"\xff\xd8\xff", (5120, 5120), None) == (cv2.IMREAD_COLOR, 1)
    assert decode_flag("grayscale", b"\xff\xd8\xff", (5120, 5120), (640, 640)) == (
        cv2.IMREAD_REDUCED_GRAYSCALE_8,
        8,
    )


def test_decode_learns_its_target_from_the_resize_that_follows() -> None:
    def decode_of(*steps: StepDefinition) -> Decode:
        pipeline = compile_pipeline(
            PipelineDefinition(PipelineRef(1, 1, "t"), steps), PipelineLimits()
        )
        step = pipeline.steps[0]
        assert isinstance(step, Decode)
        return step

    resize = StepDefinition("resize", {"width": 300, "height": 200})
    assert decode_of(StepDefinition("decode"), resize).target == (300, 200)
    assert decode_of(StepDefinition("decode", {"reduce": "off"}), resize).target is None
    assert decode_of(StepDefinition("decode"), StepDefinition("normalize")).target is None


def test_reduced_decode_gives_the_same_shape_and_close_pixels() -> None:
    data = textured_jpeg(1600, 1280)
    full_decoded, full, full_ctx = decode_then_resize(data, "off", 320, 320)
    reduced_decoded, reduced, reduced_ctx = decode_then_resize(data, "auto", 320, 320)
    assert full_decoded.shape == (1280, 1600, 3)
    assert reduced_decoded.shape == (320, 400, 3)  # 1/4: 1280 >= 4 x 320
    assert reduced.shape == full.shape == (320, 320, 3)
    assert reduced.dtype == full.dtype == np.uint8
    difference = np.abs(reduced.astype(np.int16) - full.astype(np.int16))
    assert difference.mean() < 3.0, difference.mean()
    assert np.percentile(difference, 99) < 16
    # The run records the image as uploaded, not as decoded.
    assert (reduced_ctx.image_width, reduced_ctx.image_height) == (1600, 1280)
    assert (full_ctx.image_width, full_ctx.image_height) == (1600, 1280)


def test_reduced_decode_keeps_the_exif_turn_and_records_the_turned_size() -> None:
    data = with_exif_orientation(textured_jpeg(1600, 1200), orientation=6)  # 90 degrees
    full_decoded, full, full_ctx = decode_then_resize(data, "off", 320, 240)
    reduced_decoded, reduced, reduced_ctx = decode_then_resize(data, "auto", 320, 240)
    assert full_decoded.shape[:2] == (1600, 1200)  # turned upright
    assert reduced_decoded.shape[:2] == (800, 600)  # turned too, at 1/2 (1200 < 4 x 320)
    assert (full_ctx.image_width, full_ctx.image_height) == (1200, 1600)
    assert (reduced_ctx.image_width, reduced_ctx.image_height) == (1200, 1600)
    difference = np.abs(reduced.astype(np.int16) - full.astype(np.int16))
    assert difference.mean() < 3.0, difference.mean()


async def test_a_large_upload_is_stored_with_its_original_size(
    make_client: ClientFactory, db
) -> None:
    image = jpeg_bytes(2700, 1400)  # >= 2 x 640 both ways: decoded at 1/2
    async with make_client() as client:
        response = await client.post(
            "/process_image?pipeline_id=1", files={"image": ("big.jpg", image, "image/jpeg")}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["image"]["width"], body["image"]["height"]) == (2700, 1400)
    run = await db.fetchrow(
        "SELECT image_width, image_height FROM processing_runs WHERE id = $1", body["run_id"]
    )
    assert (run["image_width"], run["image_height"]) == (2700, 1400)
