"""Which image formats reach a decoder, read from the bytes (never from the file name or the
content type), and the checks each gets before and while it is decoded.

Accepted: JPEG, PNG, WebP, BMP. Everything else — including what OpenCV would decode too
(TIFF, GIF, HDR, PFM, JPEG 2000, AVIF, PNM, Sun raster...) — is refused before any decoder
sees it, so no decoder writes its temporary files either (docs/api.md, accepted formats).
"""

import cv2
import numpy as np

from pipeline_service.errors import ImageTooLarge, UnsupportedImage
from pipeline_service.pipeline.formats import bmp, jpeg, png, webp
from pipeline_service.pipeline.formats.header import DecodeLimits, ImageHeader, check_limits

__all__ = ["ACCEPTED_FORMATS", "DecodeLimits", "ImageHeader", "decode", "read_checked_header"]

ACCEPTED_FORMATS = "JPEG, PNG, WebP or BMP"

# Formats recognised only to name them in the refusal.
REFUSED = [
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"PF\n", "PFM"),
    (b"Pf\n", "PFM"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"8BPS", "Photoshop"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
]


def _format_of(data: bytes) -> str | None:
    if jpeg.is_jpeg(data):
        return "JPEG"
    if data.startswith(png.MAGIC):
        return "PNG"
    if webp.is_webp(data):
        return "WebP"
    if data[:2] == b"BM":
        return "BMP"
    return None


def _named(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":
        return "HEIF/AVIF"
    if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"1234567" and data[2:3].isspace():
        return "PNM"
    return next((name for magic, name in REFUSED if data.startswith(magic)), None)


def read_checked_header(data: bytes, limits: DecodeLimits) -> ImageHeader:
    """The header of an accepted format, within every limit; otherwise the 415/413 that says
    why. Nothing is decoded here."""
    if not data:
        raise UnsupportedImage("The uploaded file is empty", f"send a {ACCEPTED_FORMATS} image")
    kind = _format_of(data)
    if kind is None:
        named = _named(data)
        what = f"a {named} image" if named else "not an image format accepted here"
        raise UnsupportedImage(
            f"The uploaded file ({len(data)} bytes) could not be decoded: it is {what} "
            "(judged from its first bytes)",
            f"accepted formats: {ACCEPTED_FORMATS}",
        )
    reader = {"JPEG": jpeg.read_header, "PNG": png.read_header, "WebP": webp.read_header}
    header = reader.get(kind, bmp.read_header)(data)
    check_limits(header, len(data), limits)
    return header


def decode(header: ImageHeader, data: bytes, grayscale: bool, scale: int = 1) -> np.ndarray:
    """The pixels, or a 415 when the file cannot be decoded completely. `scale` (2, 4, 8)
    shrinks a JPEG while decoding; other formats ignore it."""
    if header.format == "JPEG":
        jpeg.check_complete(data)
        image = jpeg.decode(header, data, grayscale, scale)
    else:
        if header.format == "PNG":
            png.check_complete(header, data)
        elif header.format == "BMP":
            bmp.check_complete(header, data)
        image = _opencv(header, data, grayscale)
    return image


def _opencv(header: ImageHeader, data: bytes, grayscale: bool) -> np.ndarray:
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    image, cause = None, None
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as error:
        cause = error
    if image is None or image.size == 0:
        raise UnsupportedImage(
            f"The uploaded {header.format} image ({len(data)} bytes) could not be decoded "
            "completely",
            "send the complete, undamaged file",
        ) from cause
    return np.asarray(image)


def check_decoded(image: np.ndarray, limits: DecodeLimits) -> None:
    """The header's size is what the decoder used; this only guards against a decoder that
    disagrees with our reading of it."""
    pixels = image.shape[0] * image.shape[1]
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"The image has {pixels} pixels; the limit is {limits.max_pixels} pixels "
            "(MAX_IMAGE_PIXELS)"
        )
