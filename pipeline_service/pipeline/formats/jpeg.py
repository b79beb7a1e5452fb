"""JPEG: the header read from the markers (no pixels decoded), then a strict decode.

The markers give the size, the kind of frame, the number of scans and the EXIF orientation,
so the limits hold before any pixel is decoded. The pixels come from libjpeg-turbo through
simplejpeg with `strict=True`: every libjpeg warning ("Corrupt JPEG data: premature end of
data segment", "bad Huffman code", ...) is an error there, where OpenCV only prints it and
answers grey or garbage rows (docs/decisions/0019-strict-jpeg-decoding.md).
"""

import cv2
import numpy as np
import simplejpeg

from pipeline_service.errors import UnsupportedImage
from pipeline_service.pipeline.formats.header import ImageHeader

SOI = b"\xff\xd8"  # start of image
SOS = b"\xff\xda"  # start of scan: entropy-coded data follows
EOI = b"\xff\xd9"  # end of image
MAGIC = b"\xff\xd8\xff"

# Baseline, extended sequential and progressive Huffman frames: what cameras and encoders
# write. Lossless, hierarchical and arithmetic-coded frames are refused.
ACCEPTED_FRAMES = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
OTHER_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
ORIENTATION_TAG = 0x0112
MAX_EXIF_ENTRIES = 512


def is_jpeg(data: bytes) -> bool:
    return data[:3] == MAGIC


def jpeg_is_complete(data: bytes) -> bool:
    """True if an end-of-image marker follows the last scan. Inside scan data 0xFF is always
    stuffed (FF 00) or a restart marker, so FF DA / FF D9 there are real markers; an EXIF
    thumbnail's own EOI comes before the main image's scans."""
    # Same verdict as "an EOI after the last SOS", read from the end: the last EOI, no SOS
    # after it, one before it. Scanning from the last SOS read the whole file (0.7 ms for a
    # 1080p photo, holding the GIL); this reads a few bytes at each end (docs/performance.md).
    last_end = data.rfind(EOI)
    return last_end != -1 and data.find(SOS, last_end) == -1 and data.find(SOS, 0, last_end) != -1


def _unreadable(why: str) -> UnsupportedImage:
    return UnsupportedImage(
        f"The uploaded JPEG image could not be decoded: its header cannot be read ({why})",
        "send the complete, undamaged file",
    )


def _u16(data: bytes, at: int, order: str = "big") -> int:
    return int.from_bytes(data[at : at + 2], order)  # type: ignore[arg-type]


def exif_orientation(tiff: bytes) -> int:
    """The Orientation tag (1..8) of an EXIF block (TIFF layout); 1 when absent or unreadable,
    as OpenCV reads it."""
    order = {b"II*\x00": "little", b"MM\x00*": "big"}.get(tiff[:4])
    if order is None or len(tiff) < 8:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)  # type: ignore[arg-type]
    if ifd + 2 > len(tiff):
        return 1
    for index in range(min(_u16(tiff, ifd, order), MAX_EXIF_ENTRIES)):
        entry = ifd + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        if _u16(tiff, entry, order) == ORIENTATION_TAG and _u16(tiff, entry + 2, order) == 3:
            value = _u16(tiff, entry + 8, order)
            return value if 1 <= value <= 8 else 1
    return 1


def read_header(data: bytes) -> ImageHeader:
    """Walk the marker segments up to the first scan. Reads no entropy-coded data."""
    pos, frame, orientation = 2, None, None
    while True:
        if pos + 4 > len(data):
            raise _unreadable("the file ends before its image data")
        if data[pos] != 0xFF:
            raise _unreadable(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:
            raise _unreadable(f"unexpected marker 0x{marker:02X} at byte {pos}")
        if marker == 0xD9:
            raise _unreadable("it ends before its image data")
        length = _u16(data, pos + 2)
        if length < 2 or pos + 2 + length > len(data):
            raise _unreadable(f"a segment at byte {pos} runs past the end of the file")
        if marker == 0xDA:
            break
        segment = data[pos + 4 : pos + 2 + length]
        if marker in ACCEPTED_FRAMES or marker in OTHER_FRAMES:
            if frame is not None:
                raise _unreadable("two frame headers")
            frame = (marker, segment)
        elif marker == 0xE1 and orientation is None and segment.startswith(b"Exif\x00\x00"):
            orientation = exif_orientation(segment[6:])
        pos += 2 + length
    if frame is None:
        raise _unreadable("no frame header (SOF) before the image data")
    marker, segment = frame
    if marker not in ACCEPTED_FRAMES:
        raise UnsupportedImage(
            f"The uploaded JPEG image uses a frame type (SOF 0x{marker:02X}: lossless, "
            "hierarchical or arithmetic-coded) that is not accepted",
            "send a baseline or progressive JPEG",
        )
    if len(segment) < 6:
        raise _unreadable("its frame header is too short")
    precision, height, width, components = (
        segment[0],
        _u16(segment, 1),
        _u16(segment, 3),
        segment[5],
    )
    if precision != 8:
        raise UnsupportedImage(
            f"The uploaded JPEG image has {precision}-bit samples",
            "only 8-bit JPEGs are accepted",
        )
    if width == 0 or height == 0:
        raise _unreadable(f"it declares a size of {width}x{height}")
    if components not in (1, 3, 4) or len(segment) < 6 + 3 * components:
        raise _unreadable(f"its frame header declares {components} components")
    # Only a progressive frame can make many passes over the whole image: a sequential one
    # codes each component in one scan (its scans cost what their data costs), so the count
    # (0.5 ms for a 1080p photo: FF bytes are frequent in scan data) is left out there. Inside
    # entropy-coded data every 0xFF is stuffed, so FF DA is always a real marker.
    scans = 1 + data.count(SOS, pos + 2) if marker == 0xC2 else 1
    return ImageHeader("JPEG", width, height, orientation or 1, scans=scans, components=components)


def check_complete(data: bytes) -> None:
    if not jpeg_is_complete(data):
        raise UnsupportedImage(
            f"The uploaded JPEG image ({len(data)} bytes) is truncated: it has no end-of-image "
            "marker after its image data",
            "send the complete file",
        )


def _corrupt(error: Exception) -> UnsupportedImage:
    return UnsupportedImage(
        f"The uploaded JPEG image could not be decoded completely ({error})",
        "send the complete, undamaged file",
    )


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The EXIF orientation applied exactly as OpenCV's imdecode applies it."""
    if orientation in (5, 6, 7, 8):
        image = cv2.transpose(image)
    flip = {2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}.get(orientation)
    return image if flip is None else cv2.flip(image, flip)


def decode(header: ImageHeader, data: bytes, grayscale: bool, scale: int) -> np.ndarray:
    """Pixels at 1/`scale` of the stored size (libjpeg DCT scaling), turned upright.

    Identical to cv2.imdecode's pixels (both are libjpeg-turbo with the same settings;
    tests/pipeline/test_image_decoders.py compares them), but every libjpeg warning is an error.
    """
    height, width = -(-header.height // scale), -(-header.width // scale)
    sizing = {"min_factor": scale, "min_height": height, "min_width": width, "strict": True}
    try:
        if header.components == 4:
            # CMYK/YCCK: decoded strictly to check it (1/8 scale: the entropy decoding is
            # complete, the rest cheap), then by OpenCV for its CMYK->BGR conversion. Rare.
            simplejpeg.decode_jpeg(data, "CMYK", min_factor=8, min_height=1, min_width=1)
            return _opencv(data, grayscale, scale)
        image = simplejpeg.decode_jpeg(data, "GRAY" if grayscale else "BGR", **sizing)
    except (ValueError, RuntimeError) as error:
        raise _corrupt(error) from error
    if grayscale:
        image = image.reshape(image.shape[:2])
    return apply_orientation(image, header.orientation)


REDUCED = {
    (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4,
    (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def _opencv(data: bytes, grayscale: bool, scale: int) -> np.ndarray:
    flag = REDUCED.get((grayscale, scale), cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error as error:
        raise _corrupt(error) from error
    if image is None:
        raise _corrupt(ValueError("OpenCV could not decode it"))
    return image
