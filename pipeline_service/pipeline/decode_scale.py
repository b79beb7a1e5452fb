"""At which scale to decode a JPEG (libjpeg's DCT scaling: 1/2, 1/4, 1/8), decided from its
header size and the resize that follows, never by decoding twice.

- `auto`: the largest scale whose image still covers the target on both sides.
- `fast`: as `auto`, and also 1/2 where the 1/2-scale image falls a little short of the
  target but its linear resize was measured at least as close to an area-resampled
  reference (full decode + INTER_AREA) as the literal path (full decode + INTER_LINEAR):
  docs/decisions/0018-fast-decode-rule.md, `python -m bench.decode_quality`.
- `off`: always the full size.
"""

from typing import Literal

import cv2

from pipeline_service.pipeline.formats.jpeg import is_jpeg

ReduceMode = Literal["auto", "fast", "off"]

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

# The `fast` rule, as factors of the literal resize (side / target side) of the image's two
# axes. Measured on the shared photos at many sizes: the 1/2-scale path is at least as close
# to the reference when the shorter-factor axis is >= 1.68 (its 1/2 image >= 84 % of the
# target) and the longer-factor axis is exactly 3 (the literal resize then keeps every third
# pixel and drops the rest: 1920 -> 640) or within [3.04, 4). Below 1.68, or near a factor
# of 4 or 6, the full decode + linear resize is closer; just above 3 (3.0-3.04) too.
FAST_MIN_SHORT_FACTOR = 1.68
FAST_LONG_FACTORS = (3.04, 4.0)  # [low, high)
FAST_EXACT_LONG_FACTOR = 3


def decode_flag(
    color: str,
    data: bytes,
    size: tuple[int, int],
    target: tuple[int, int] | None,
    mode: ReduceMode = "auto",
) -> tuple[int, int]:
    """The cv2.imdecode flag and its scale (1 = full size) for an image of `size` (from the
    header) that will be resized to `target` (None: no resize follows).

    Only JPEG shrinks while decoding (other formats decode in full, then resize). The
    image may be turned by its EXIF orientation, so both of its sides must cover the larger
    side of the target.
    """
    if target is None or mode == "off" or not is_jpeg(data):
        return FULL_FLAGS[color], 1
    shorter, needed = min(size), max(target)
    for scale, flag in REDUCED_FLAGS[color]:
        if shorter >= scale * needed:
            return flag, scale
    if mode == "fast" and half_scale_is_closer(size, target):
        scale, flag = REDUCED_FLAGS[color][-1]
        return flag, scale
    return FULL_FLAGS[color], 1


def half_scale_is_closer(size: tuple[int, int], target: tuple[int, int]) -> bool:
    """The `fast` rule for an image the 1/2-scale decode leaves smaller than the target."""
    width, height = size
    if width % 2 or height % 2:  # an odd side: the 1/2 image is shifted by half a pixel
        return False
    target_width, target_height = target
    # The EXIF orientation may turn the image: the rule must hold either way round.
    return _fast_factors(width, target_width, height, target_height) and _fast_factors(
        height, target_width, width, target_height
    )


def _fast_factors(side_x: int, target_x: int, side_y: int, target_y: int) -> bool:
    (short_side, short_target), (long_side, long_target) = sorted(
        ((side_x, target_x), (side_y, target_y)), key=lambda pair: pair[0] / pair[1]
    )
    low, high = FAST_LONG_FACTORS
    return short_side >= FAST_MIN_SHORT_FACTOR * short_target and (
        long_side == FAST_EXACT_LONG_FACTOR * long_target
        or low * long_target <= long_side < high * long_target
    )
