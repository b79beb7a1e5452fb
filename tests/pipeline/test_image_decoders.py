"""The decoders behind the decode step: JPEG through libjpeg-turbo in strict mode gives the
very pixels cv2.imdecode gives (scaled and turned alike), and each header reader reads what
the encoders wrote."""

import contextlib

import cv2
import numpy as np
import pytest

from pipeline_service.errors import UnsupportedImage
from pipeline_service.pipeline import formats
from pipeline_service.pipeline.formats import DecodeLimits
from pipeline_service.pipeline.formats.png import expected_bytes
from tests.fixtures.hostile_images import interlaced_png, noisy, png_raw
from tests.fixtures.images import encode, jpeg_with_exif_orientation, photo, pil_jpeg

LIMITS = DecodeLimits()
REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
REDUCED_GRAY = {
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def opencv(data: bytes, grayscale: bool, scale: int) -> np.ndarray:
    table = REDUCED_GRAY if grayscale else REDUCED
    full = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    return cv2.imdecode(np.frombuffer(data, np.uint8), table.get(scale, full))


def ours(data: bytes, grayscale: bool = False, scale: int = 1) -> np.ndarray:
    return formats.decode(formats.read_checked_header(data, LIMITS), data, grayscale, scale)


JPEGS = {
    "baseline": lambda: encode(noisy(333, 251), ".jpg"),
    "progressive": lambda: encode(noisy(333, 251), ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    "grayscale": lambda: encode(cv2.cvtColor(noisy(200, 120), cv2.COLOR_BGR2GRAY), ".jpg"),
    "CMYK": lambda: pil_jpeg("CMYK", 120, 80),
    "4:4:4": lambda: pil_jpeg("RGB", 90, 70, subsampling=0),
    **{
        f"EXIF orientation {n}": (lambda n=n: jpeg_with_exif_orientation(n, 64, 48))
        for n in range(1, 9)
    },
}


@pytest.mark.parametrize("scale", [1, 2, 8])
@pytest.mark.parametrize("grayscale", [False, True], ids=["color", "grayscale"])
@pytest.mark.parametrize("case", list(JPEGS))
def test_jpeg_pixels_are_opencvs(case: str, grayscale: bool, scale: int) -> None:
    data = JPEGS[case]()
    expected, got = opencv(data, grayscale, scale), ours(data, grayscale, scale)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected)


def test_exif_orientation_gives_the_upright_size() -> None:
    header = formats.read_checked_header(jpeg_with_exif_orientation(6, 64, 48), LIMITS)
    assert (header.width, header.height, header.orientation) == (64, 48, 6)
    assert header.upright_size == (48, 64)


def test_scans_are_counted_from_the_markers() -> None:
    baseline = encode(photo(64, 48), ".jpg")
    progressive = encode(photo(64, 48), ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    assert formats.read_checked_header(baseline, LIMITS).scans == 1
    assert formats.read_checked_header(progressive, LIMITS).scans == 10  # libjpeg's script


OTHERS = {
    "PNG": lambda: encode(noisy(97, 61), ".png"),
    "PNG with alpha": lambda: encode(cv2.cvtColor(noisy(97, 61), cv2.COLOR_BGR2BGRA), ".png"),
    "16-bit PNG": lambda: encode(noisy(97, 61).astype(np.uint16) * 257, ".png"),
    "grayscale PNG": lambda: encode(cv2.cvtColor(noisy(97, 61), cv2.COLOR_BGR2GRAY), ".png"),
    "1-bit PNG": lambda: encode(
        (cv2.cvtColor(noisy(97, 61), cv2.COLOR_BGR2GRAY) > 128).astype(np.uint8) * 255,
        ".png",
        cv2.IMWRITE_PNG_BILEVEL,
        1,
    ),
    "interlaced PNG": lambda: interlaced_png(noisy(37, 29)),
    "WebP": lambda: encode(noisy(97, 61), ".webp"),
    "lossless WebP": lambda: encode(noisy(97, 61), ".webp", cv2.IMWRITE_WEBP_QUALITY, 101),
    "BMP": lambda: encode(noisy(97, 61), ".bmp"),
    "8-bit BMP": lambda: encode(cv2.cvtColor(noisy(97, 61), cv2.COLOR_BGR2GRAY), ".bmp"),
}


@pytest.mark.parametrize("case", list(OTHERS))
def test_other_formats_decode_like_opencv(case: str) -> None:
    data = OTHERS[case]()
    header = formats.read_checked_header(data, LIMITS)
    expected = opencv(data, False, 1)
    assert (header.width, header.height) == (expected.shape[1], expected.shape[0])
    assert np.array_equal(ours(data), expected)


def test_top_down_bmp_is_read() -> None:
    bottom_up = encode(noisy(40, 30), ".bmp")
    rows = np.frombuffer(bottom_up[54:], np.uint8).reshape(30, -1)[::-1]
    top_down = bottom_up[:22] + (-30).to_bytes(4, "little", signed=True) + bottom_up[26:54]
    top_down += rows.tobytes()
    assert np.array_equal(ours(top_down), ours(bottom_up))


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (37, 29), (64, 64)])
def test_interlaced_png_size_is_computed_right(size: tuple[int, int]) -> None:
    data = interlaced_png(noisy(*size))
    header = formats.read_checked_header(data, LIMITS)
    assert expected_bytes(header, data) == len(png_raw(data))
    assert np.array_equal(ours(data), opencv(data, False, 1))


def test_decode_errors_never_escape_as_other_exceptions() -> None:
    data = encode(noisy(64, 48), ".jpg")
    for cut in range(0, len(data), 97):
        broken = data[:cut] + b"\xff\xd9"
        with contextlib.suppress(UnsupportedImage):
            ours(broken)
