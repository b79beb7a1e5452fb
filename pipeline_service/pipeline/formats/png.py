"""PNG: the size from IHDR, and the compressed data checked in full before OpenCV decodes it.

libpng (through OpenCV) refuses truncated files and bad chunk CRCs, but a zlib stream whose
checksum is wrong is only a warning there, and the image comes out black. So the IDAT stream
is inflated once here (in bounded pieces, nothing kept): it must end, check out, and give
exactly the bytes the header's size calls for.
"""

import zlib
from functools import partial

from pipeline_service.errors import UnsupportedImage
from pipeline_service.pipeline.formats.header import ImageHeader, unreadable

MAGIC = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]
MAX_CHUNKS = 16_384  # 20 MB of the usual 8 KB IDAT chunks is 2,560
INFLATE_PIECE = 1 << 20


_unreadable = partial(unreadable, "PNG")


def read_header(data: bytes) -> ImageHeader:
    if len(data) < 33 or data[12:16] != b"IHDR" or int.from_bytes(data[8:12], "big") != 13:
        raise _unreadable("its header cannot be read (no IHDR chunk first)")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour, interlace = data[24], data[25], data[28]
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise _unreadable(f"its header cannot be read (size {width}x{height})")
    if depth not in DEPTHS.get(colour, ()) or interlace > 1 or data[26] or data[27]:
        raise _unreadable(
            f"its header cannot be read (bit depth {depth}, colour type {colour}, "
            f"interlace {interlace})"
        )
    return ImageHeader("PNG", width, height)


def _row_bytes(width: int, data: bytes) -> int:
    depth, colour = data[24], data[25]
    return 1 + -(-width * CHANNELS[colour] * depth // 8)  # a filter byte, then the samples


def expected_bytes(header: ImageHeader, data: bytes) -> int:
    """What the IDAT stream must inflate to for an image of the header's size."""
    width, height = header.width, header.height
    if data[28] == 0:
        return height * _row_bytes(width, data)
    total = 0
    for x0, y0, dx, dy in ADAM7:
        columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if columns > 0 and rows > 0:
            total += rows * _row_bytes(columns, data)
    return total


def check_complete(header: ImageHeader, data: bytes) -> None:
    expected, inflated, chunks = expected_bytes(header, data), 0, 0
    stream = zlib.decompressobj()
    view, pos = memoryview(data), 8
    while True:
        chunks += 1
        if pos + 12 > len(data) or chunks > MAX_CHUNKS:
            reason = (
                "it is truncated (no IEND chunk)"
                if chunks <= MAX_CHUNKS
                else (f"it has more than {MAX_CHUNKS} chunks")
            )
            raise _unreadable(reason)
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if pos + 12 + length > len(data):
            raise _unreadable(f"it is truncated (the {kind.decode('latin-1')} chunk is cut off)")
        if kind == b"IEND":
            break
        if kind == b"acTL":
            raise UnsupportedImage("Animated PNGs are not accepted", "send a single image")
        if kind == b"IDAT":
            piece = view[pos + 8 : pos + 8 + length]
            try:
                while piece and not stream.eof:
                    inflated += len(stream.decompress(piece, INFLATE_PIECE))
                    piece = memoryview(stream.unconsumed_tail)
                    if inflated > expected:
                        raise _unreadable("its image data is longer than its size calls for")
            except zlib.error as error:
                raise _unreadable(f"its image data is corrupt ({error})") from error
        pos += 12 + length
    if not stream.eof or inflated != expected:
        raise _unreadable(
            f"its image data ends early ({inflated} of {expected} bytes)"
            if inflated < expected
            else "its compressed image data does not end properly"
        )
