"""Image steps: bytes -> pixels -> 640x640 -> normalized -> base64 payload (all CPU-bound)."""

import base64
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from pipeline_service.pipeline import formats
from pipeline_service.pipeline.decode_scale import ReduceMode, decode_flag
from pipeline_service.pipeline.step import CpuStep, Step, StepParams, register
from pipeline_service.pipeline.types import ImagePayload, Kind, RunContext, SizeBound

ACCEPTED_FORMATS = formats.ACCEPTED_FORMATS
MAX_SIDE = 16384


class DecodeParams(StepParams):
    color: Literal["color", "grayscale"] = Field(
        "color", description="Decode to 3-channel BGR (color) or 1-channel grayscale."
    )
    reduce: ReduceMode = Field(
        "auto",
        description="auto: when a resize follows and the JPEG is at least 2x, 4x or 8x its "
        "target in both sides, decode at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling): a close "
        "output for a fraction of the cost. fast: as auto, and also at 1/2 scale when a linear "
        "resize follows and the JPEG is a little under 2x its target (e.g. 1920x1080 to "
        "640x640), in the sizes where that was measured at least as close to an area-resampled "
        "reference as the full decode + linear resize; about a third less decode CPU, but the "
        "model sees other pixels, so it is opt-in. off: always decode at full size.",
    )


@register
class Decode(CpuStep):
    name = "decode"
    description = (
        "Decode the uploaded bytes into pixels (JPEG, PNG, WebP or BMP, each checked from its "
        "header first; JPEG by libjpeg-turbo in strict mode, the others by OpenCV)."
    )
    consumes = Kind.ENCODED
    produces = Kind.IMAGE
    Params = DecodeParams
    params: DecodeParams
    target: tuple[int, int] | None = None  # width, height of the resize that follows
    reduce: ReduceMode = "off"  # the rule that applies before that resize

    def output_size(self, given: SizeBound) -> SizeBound:
        # `given.pixels` is MAX_IMAGE_PIXELS: the upload's size is not known before it arrives
        return SizeBound(given.pixels, channels=1 if self.params.color == "grayscale" else 3)

    def link(self, following: Sequence[Step]) -> None:
        if self.params.reduce != "off" and following and isinstance(following[0], Resize):
            resize = following[0].params
            self.target = (resize.width, resize.height)
            # fast's rule was measured against the linear resize; before another, it is auto.
            linear = resize.interpolation == "linear"
            self.reduce = "fast" if self.params.reduce == "fast" and linear else "auto"

    def apply(self, value: bytes, ctx: RunContext) -> np.ndarray:
        limits = ctx.services.decode_limits
        header = formats.read_checked_header(value, limits)
        scale = 1
        if header.format == "JPEG":
            size = (header.width, header.height)
            _, scale = decode_flag(self.params.color, value, size, self.target, self.reduce)
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
        # dst None: OpenCV allocates the output (its type stubs do not say it may be None).
        if self.params.mode == "float32_0_1":
            return cv2.normalize(value, None, 0.0, 1.0, cv2.NORM_MINMAX, dtype=cv2.CV_32F)  # type: ignore[call-overload]
        return cv2.normalize(value, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)  # type: ignore[call-overload]


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
            raw = np.ascontiguousarray(value).data  # the pixel bytes, no copy
        else:
            if value.dtype != np.uint8:  # float32 0..1 from normalize; PNG/JPEG want 8 bits
                value = cv2.convertScaleAbs(value, alpha=255.0)
            options = (
                [cv2.IMWRITE_JPEG_QUALITY, self.params.jpeg_quality] if encoding == "jpeg" else []
            )
            ok, encoded = cv2.imencode(f".{encoding}", value, options)
            if not ok:
                raise RuntimeError(f"cv2.imencode could not encode the image as {encoding}")
            raw = encoded.data
        return ImagePayload(
            image=base64.b64encode(raw).decode("ascii"),
            encoding=encoding,
            shape=tuple(value.shape),
            dtype=str(value.dtype),
        )
