"""The CPU steps on real images (OpenCV, no service around them)."""

import base64

import cv2
import numpy as np
import pytest

from pipeline_service.errors import ImageTooLarge, UnsupportedImage
from pipeline_service.pipeline.definition import PipelineRef
from pipeline_service.pipeline.formats import DecodeLimits
from pipeline_service.pipeline.steps.image import Base64, Decode, Normalize, Resize
from pipeline_service.pipeline.types import RunContext, RunServices
from tests.fixtures.images import jpeg_bytes


def context(data: bytes = b"", max_pixels: int = 10_000_000) -> RunContext:
    limits = DecodeLimits(max_pixels=max_pixels)
    services = RunServices(model=None, recorder=None, decode_limits=limits)  # type: ignore[arg-type]
    return RunContext(pipeline=PipelineRef(1, 1, "t"), data=data, services=services)


def test_decode_resize_normalize_base64_raw() -> None:
    data = jpeg_bytes(320, 240)
    ctx = context(data)
    image = Decode(Decode.Params()).apply(data, ctx)
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert (ctx.image_width, ctx.image_height) == (320, 240)
    resized = Resize(Resize.Params()).apply(image, ctx)
    assert resized.shape == (640, 640, 3)
    normalized = Normalize(Normalize.Params()).apply(resized, ctx)
    assert normalized.dtype == np.uint8
    assert (normalized.min(), normalized.max()) == (0, 255)
    payload = Base64(Base64.Params(encoding="raw")).apply(normalized, ctx)
    assert (payload.encoding, payload.shape, payload.dtype) == ("raw", (640, 640, 3), "uint8")
    raw = np.frombuffer(base64.b64decode(payload.image), np.uint8).reshape(payload.shape)
    assert np.array_equal(raw, normalized)


def test_normalize_float_mode() -> None:
    image = np.array([[10, 20], [30, 110]], np.uint8)
    out = Normalize(Normalize.Params(mode="float32_0_1")).apply(image, context())
    assert out.dtype == np.float32
    assert out.min() == pytest.approx(0.0, abs=1e-6) and out.max() == pytest.approx(1.0)


@pytest.mark.parametrize("encoding", ["png", "jpeg"])
def test_base64_encoded_files_decode_back(encoding: str) -> None:
    image = cv2.resize(cv2.imdecode(np.frombuffer(jpeg_bytes(), np.uint8), 1), (64, 64))
    payload = Base64(Base64.Params(encoding=encoding)).apply(image, context())
    back = cv2.imdecode(np.frombuffer(base64.b64decode(payload.image), np.uint8), 1)
    assert back.shape == (64, 64, 3)


def test_grayscale_decode_and_png_input() -> None:
    ok, png = cv2.imencode(".png", np.full((30, 40), 128, np.uint8))
    assert ok
    image = Decode(Decode.Params(color="grayscale")).apply(png.tobytes(), context())
    assert image.shape == (30, 40)


def test_pixel_limit_is_checked_from_the_header() -> None:
    data = jpeg_bytes(400, 300)
    with pytest.raises(ImageTooLarge, match="400x300 = 120000 pixels; the limit is 100000"):
        Decode(Decode.Params()).apply(data, context(data, max_pixels=100_000))


@pytest.mark.parametrize("data", [b"", b"GIF89a-not-really", b"\xff\xd8\xff\xe0garbage"])
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        Decode(Decode.Params()).apply(data, context(data))
