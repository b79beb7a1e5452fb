"""Tell a complete JPEG from a truncated one without decoding it.

Some libjpeg builds decode a truncated file "successfully" (the missing rows come out grey,
with only a warning on stderr), so the decoder's verdict alone is not enough.
"""

SOI = b"\xff\xd8"  # start of image
SOS = b"\xff\xda"  # start of scan: entropy-coded data follows
EOI = b"\xff\xd9"  # end of image


def is_jpeg(data: bytes) -> bool:
    return data[:2] == SOI


def jpeg_is_complete(data: bytes) -> bool:
    """True if an end-of-image marker follows the last scan. Inside scan data 0xFF is always
    stuffed (FF 00) or a restart marker, so FF DA / FF D9 there are real markers; an EXIF
    thumbnail's own EOI comes before the main image's scans."""
    # Same verdict as "an EOI after the last SOS", read from the end: the last EOI, no SOS
    # after it, one before it. Scanning from the last SOS read the whole file (0.7 ms for a
    # 1080p photo, holding the GIL); this reads a few bytes at each end (docs/performance.md).
    last_end = data.rfind(EOI)
    return last_end != -1 and data.find(SOS, last_end) == -1 and data.find(SOS, 0, last_end) != -1
