"""Geometric and colour transforms of the decoded image (all CPU-bound, image -> image)."""

from typing import Literal

import cv2
import numpy as np
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from pipeline_service.errors import ImageDoesNotFit
from pipeline_service.pipeline.step import CpuStep, StepParams, register
from pipeline_service.pipeline.steps.image import MAX_SIDE
from pipeline_service.pipeline.types import Kind, RunContext, SizeBound


class GrayscaleParams(StepParams):
    keep_channels: bool = Field(
        False,
        description="false: one channel; true: the gray image repeated in 3 channels "
        "(for models that expect colour input).",
    )


@register
class Grayscale(CpuStep):
    name = "grayscale"
    description = "Convert to grayscale (cv2.cvtColor BGR2GRAY); a gray image passes unchanged."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = GrayscaleParams
    params: GrayscaleParams

    def output_size(self, given: SizeBound) -> SizeBound:
        channels = 3 if self.params.keep_channels else 1
        return SizeBound(given.pixels, channels, given.itemsize, given.width, given.height)

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        gray = value if value.ndim == 2 else cv2.cvtColor(value, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR) if self.params.keep_channels else gray


class CropParams(StepParams):
    x: int = Field(0, ge=0, lt=MAX_SIDE, description="Left edge of the region, in pixels.")
    y: int = Field(0, ge=0, lt=MAX_SIDE, description="Top edge of the region, in pixels.")
    w: int = Field(640, ge=1, le=MAX_SIDE, description="Width of the region, in pixels.")
    h: int = Field(640, ge=1, le=MAX_SIDE, description="Height of the region, in pixels.")


@register
class Crop(CpuStep):
    name = "crop"
    description = "Keep the region x, y, w, h; a region reaching past the image edge is clipped."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = CropParams
    params: CropParams

    def output_size(self, given: SizeBound) -> SizeBound:
        p = self.params
        if given.width is None or given.height is None:
            pixels = min(given.pixels, p.w * p.h)
            return SizeBound(pixels, given.channels, given.itemsize)
        width, height = min(p.w, given.width), min(p.h, given.height)
        return SizeBound(width * height, given.channels, given.itemsize, width, height)

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        p = self.params
        height, width = value.shape[:2]
        if p.x >= width or p.y >= height:
            raise ImageDoesNotFit(
                f"The crop region starts at x={p.x}, y={p.y}, outside the {width}x{height} "
                "image reaching this step",
                "send a larger image or change the crop step",
            )
        return value[p.y : min(p.y + p.h, height), p.x : min(p.x + p.w, width)]


FLIP_CODES = {"horizontal": 1, "vertical": 0, "both": -1}


class FlipParams(StepParams):
    direction: Literal["horizontal", "vertical", "both"] = Field(
        "horizontal",
        description="horizontal: mirror left-right; vertical: upside down; both: both.",
    )


@register
class Flip(CpuStep):
    name = "flip"
    description = "Mirror the image horizontally, vertically or both (cv2.flip)."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = FlipParams
    params: FlipParams

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        return cv2.flip(value, FLIP_CODES[self.params.direction])


ROTATIONS = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


class RotateParams(StepParams):
    degrees: Literal[90, 180, 270] = Field(90, description="Clockwise rotation.")


@register
class Rotate(CpuStep):
    name = "rotate"
    description = "Rotate clockwise by 90, 180 or 270 degrees (cv2.rotate, lossless)."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = RotateParams
    params: RotateParams

    def output_size(self, given: SizeBound) -> SizeBound:
        if self.params.degrees == 180:
            return given
        return SizeBound(given.pixels, given.channels, given.itemsize, given.height, given.width)

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        return cv2.rotate(value, ROTATIONS[self.params.degrees])


class GaussianBlurParams(StepParams):
    kernel_size: int = Field(
        5, ge=1, le=99, description="Side of the square kernel, in pixels; must be odd."
    )
    sigma: float = Field(
        0.0, ge=0, le=100, description="Standard deviation; 0 derives it from the kernel size."
    )

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise PydanticCustomError(
                "odd_number",
                "must be odd (a kernel has a centre pixel), e.g. {suggestion}",
                {"suggestion": value + 1},
            )
        return value


@register
class GaussianBlur(CpuStep):
    name = "gaussian_blur"
    description = "Smooth the image with a Gaussian kernel (cv2.GaussianBlur)."
    consumes = Kind.IMAGE
    produces = Kind.IMAGE
    Params = GaussianBlurParams
    params: GaussianBlurParams

    def apply(self, value: np.ndarray, ctx: RunContext) -> np.ndarray:
        size = self.params.kernel_size
        return cv2.GaussianBlur(value, (size, size), self.params.sigma)
