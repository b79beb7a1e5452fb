"""BMP: uncompressed only, and the pixel data must all be there (its size follows from the
header). RLE-compressed BMPs are refused: an RLE stream may end early by design, and OpenCV
then fills the rest with one colour."""

from functools import partial

from pipeline_service.errors import UnsupportedImage
from pipeline_service.pipeline.formats.header import ImageHeader, unreadable

DEPTHS = (1, 4, 8, 16, 24, 32)
UNCOMPRESSED, BITFIELDS = 0, 3
HEADER_SIZES = (12, 40, 52, 56, 108, 124)


_unreadable = partial(unreadable, "BMP")


def read_header(data: bytes) -> ImageHeader:
    if len(data) < 26:
        raise _unreadable("its header cannot be read (too short)")
    offset, header_size = (
        int.from_bytes(data[10:14], "little"),
        int.from_bytes(data[14:18], "little"),
    )
    if header_size not in HEADER_SIZES or len(data) < 14 + header_size:
        raise _unreadable(f"its header cannot be read (DIB header of {header_size} bytes)")
    if header_size == 12:  # OS/2 core header: 16-bit sizes, never compressed
        width, height = int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
        planes, depth, compression = int.from_bytes(data[22:24], "little"), data[24], UNCOMPRESSED
    else:
        width = int.from_bytes(data[18:22], "little", signed=True)
        height = int.from_bytes(data[22:26], "little", signed=True)  # negative: top-down
        planes = int.from_bytes(data[26:28], "little")
        depth = int.from_bytes(data[28:30], "little")
        compression = int.from_bytes(data[30:34], "little")
    if width <= 0 or height == 0 or planes != 1 or depth not in DEPTHS:
        raise _unreadable(
            f"its header cannot be read (size {width}x{height}, {depth} bits per pixel)"
        )
    if compression != UNCOMPRESSED and not (compression == BITFIELDS and depth in (16, 32)):
        raise UnsupportedImage(
            f"The uploaded BMP image is compressed (method {compression})",
            "only uncompressed BMPs are accepted",
        )
    if offset < 14 + header_size:
        raise _unreadable(f"its header cannot be read (pixel data at byte {offset})")
    return ImageHeader("BMP", width, abs(height), bits_per_pixel=depth)


def check_complete(header: ImageHeader, data: bytes) -> None:
    """Every row is there: an uncompressed BMP's size follows from its header."""
    offset, depth = int.from_bytes(data[10:14], "little"), header.bits_per_pixel
    needed = offset + (header.width * depth + 31) // 32 * 4 * header.height
    if len(data) < needed:
        raise _unreadable(
            f"it is truncated ({len(data)} bytes where its header calls for {needed})"
        )
