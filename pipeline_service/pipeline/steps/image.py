"""Image steps: bytes -> pixels -> 640x640 -> normalized -> base64 payload (all CPU-bound)."""

import base64
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from pipeline_service.pipeline import formats
from pipeline_service.pipeline.formats.jpeg import is_jpeg
from pipeline_service.pipeline.step import CpuStep, Step, StepParams, register
from pipeline_service.pipeline.types import ImagePayload, Kind, RunContext, SizeBound

ACCEPTED_FORMATS = formats.ACCEPTED_FORMATS
MAX_SIDE = 16384


class DecodeParams(StepParams):
    color: Literal["color", "grayscale"] = Field(
        "color", description="Decode to 3-channel BGR (color) or 1-channel grayscale."
    )
    reduce: Literal["auto", "off"] = Field(
        "auto",
        description="auto: when a resize follows and the JPEG is at least 2x, 4x or 8x its "
        "target in both sides, decode at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling): a close "
        "output for a fraction of the cost. off: always decode at full size.",
    )


# (scale, flag) by color mode, largest reduction first.
REDUCED_FLAGS = {
    "color": [
        (8, cv2.IMREAD_REDUCED_COLOR_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2),
    ],
    "grayscale": [
        (8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
        (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
        (2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    ],
}
FULL_FLAGS = {"color": cv2.IMREAD_COLOR, "grayscale": cv2.IMREAD_GRAYSCALE}


def reduction(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """How much a JPEG of `size` (from its header) may shrink while decoding when it will be
    resized to `target`: 8, 4, 2 or 1. The image may be turned by its EXIF orientation, so
    both of its sides must cover the larger side of the target."""
    if target is None:
        return 1
    shorter, needed = min(size), max(target)
    return next((scale for scale in (8, 4, 2) if shorter >= scale * needed), 1)


def decode_flag(
    color: str, data: bytes, size: tuple[int, int], target: tuple[int, int] | None
) -> tuple[int, int]:
    """The cv2.imdecode flag and its scale (1 = full size) for an image of `size` (from the
    header) that will be resized to `target` (only JPEG shrinks while decoding)."""
    scale = reduction(size, target) if is_jpeg(data) else 1
    flags = dict(REDUCED_FLAGS[color])
    return flags.get(scale, FULL_FLAGS[color]), scale


@register
class Decode(CpuStep):
    name = "decode"
    description = "Decode the uploaded bytes (np.frombuffer + cv2.imdecode) into pixels."
    consumes = Kind.ENCODED
    produces = Kind.IMAGE
    Params = DecodeParams
    params: DecodeParams
    target: tuple[int, int] | None = None  # width, height of the resize that follows

    def output_size(self, given: SizeBound) -> SizeBound:
        # `given.pixels` is MAX_IMAGE_PIXELS: the upload's size is not known before it arrives
        return SizeBound(given.pixels, channels=1 if self.params.color == "grayscale" else 3)

    def link(self, following: Sequence[Step]) -> None:
        if self.params.reduce == "auto" and following and isinstance(following[0], Resize):
            self.target = (following[0].params.width, following[0].params.height)

    def apply(self, value: bytes, ctx: RunContext) -> np.ndarray:
        limits = ctx.services.decode_limits
        header = formats.read_checked_header(value, limits)
        scale = 1
        if header.format == "JPEG" and self.params.reduce == "auto":
            scale = reduction((header.width, header.height), self.target)
        image = formats.decode(header, value, self.params.color == "grayscale", scale)
        formats.check_decoded(image, limits)
        # The run records the size as uploaded, turned like the pixels (EXIF orientation).
        ctx.image_width, ctx.image_height = (
            header.upright_size if scale > 1 else (image.shape[1], image.shape[0])
        )
        return image


INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
}


class ResizeParams(StepParams):
    width: int = Field(640, ge=1, le=MAX_SIDE, description="Output width in pixels.")
    height: int = Field(640, ge=1, le=MAX_SIDE, description="Output height in pixels.")
    interpolation: Literal["nearest", "linear", "area", "cubic"] = Field(
        "linear", description="cv2.resize interpolation."
    )


@register
class Resize(CpuStep):
    name = "resize"
    description = "Resize to a fixed width x height (cv2.resize), ignoring aspect ratio."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = ResizeParams
    params: ResizeParams

    def output_size(self, given: SizeBound) -> SizeBound:
        p = self.params
        return SizeBound(p.width * p.height, given.channels, given.itemsize, p.width, p.height)

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        p = self.params
        return cv2.resize(value, (p.width, p.height), interpolation=INTERPOLATIONS[p.interpolation])


class NormalizeParams(StepParams):
    mode: Literal["minmax_uint8", "float32_0_1"] = Field(
        "minmax_uint8",
        description="Min-max stretch to 0..255 as uint8, or to 0..1 as float32.",
    )


@register
class Normalize(CpuStep):
    name = "normalize"
    description = "Stretch pixel values to the full range (cv2.normalize, NORM_MINMAX)."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = NormalizeParams
    params: NormalizeParams

    def output_size(self, given: SizeBound) -> SizeBound:
        itemsize = 4 if self.params.mode == "float32_0_1" else 1
        return SizeBound(given.pixels, given.channels, itemsize, given.width, given.height)

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        if self.params.mode == "float32_0_1":
            return cv2.normalize(value, None, 0.0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)
        return cv2.normalize(value, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)


class Base64Params(StepParams):
    encoding: Literal["raw", "png", "jpeg"] = Field(
        "jpeg",
        description="jpeg/png: an encoded file; raw: the pixel bytes (shape and dtype ride "
        "along). jpeg is the default: the bench measured the model service parsing 1.6 MB of "
        "raw base64 at ~2.8 ms CPU a request against ~0.6 ms for a JPEG (docs/performance.md).",
    )
    jpeg_quality: int = Field(90, ge=1, le=100, description="Quality when encoding is jpeg.")


@register
class Base64(CpuStep):
    name = "base64"
    description = "Turn the processed image into a base64 string for the model service."
    consumes = Kind.IMAGE
    produces = Kind.PAYLOAD
    Params = Base64Params
    params: Base64Params

    def output_size(self, given: SizeBound) -> SizeBound:
        # raw: the pixel bytes; png/jpeg: 8-bit samples, encoded (at most about as large)
        raw = given.nbytes if self.params.encoding == "raw" else given.pixels * given.channels
        return SizeBound(given.pixels, given.channels, payload_bytes=-(-raw // 3) * 4)

    def apply(self, value: np.ndarray, ctx: RunContext) -> ImagePayload:
        encoding = self.params.encoding
        if encoding == "raw":
            raw: bytes | np.ndarray = np.ascontiguousarray(value)
        else:
            if value.dtype != np.uint8:  # float32 0..1 from normalize; PNG/JPEG want 8 bits
                value = cv2.convertScaleAbs(value, alpha=255.0)
            options = (
                [cv2.IMWRITE_JPEG_QUALITY, self.params.jpeg_quality] if encoding == "jpeg" else []
            )
            ok, raw = cv2.imencode(f".{encoding}", value, options)
            if not ok:
                raise RuntimeError(f"cv2.imencode could not encode the image as {encoding}")
        return ImagePayload(
            image=base64.b64encode(raw).decode("ascii"),
            encoding=encoding,
            shape=tuple(value.shape),
            dtype=str(value.dtype),
        )
