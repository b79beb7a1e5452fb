"""WebP: the size from the first chunk (VP8, VP8L or VP8X). libwebp (through OpenCV) reports
truncated and corrupt data itself: OpenCV then answers no image."""

from functools import partial

from pipeline_service.errors import UnsupportedImage
from pipeline_service.pipeline.formats.header import ImageHeader, unreadable

ANIMATION_FLAG = 0x02


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


_unreadable = partial(unreadable, "WebP")


def read_header(data: bytes) -> ImageHeader:
    if len(data) < 30:
        raise _unreadable("its header cannot be read (too short)")
    if int.from_bytes(data[4:8], "little") + 8 > len(data):
        raise _unreadable("it is truncated (shorter than its RIFF header says)")
    kind, payload = data[12:16], data[20:30]
    if kind == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(payload[6:8], "little") & 0x3FFF
        height = int.from_bytes(payload[8:10], "little") & 0x3FFF
    elif kind == b"VP8L" and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif kind == b"VP8X":
        if payload[0] & ANIMATION_FLAG:
            raise UnsupportedImage("Animated WebPs are not accepted", "send a single image")
        width = int.from_bytes(payload[4:7], "little") + 1
        height = int.from_bytes(payload[7:10], "little") + 1
    else:
        raise _unreadable(f"its header cannot be read (first chunk {kind!r})")
    if width == 0 or height == 0:
        raise _unreadable(f"its header cannot be read (size {width}x{height})")
    return ImageHeader("WebP", width, height)
