"""Test images for the hardening tests: photo-like pixels, unique JPEGs, and files OpenCV
cannot write itself (CMYK, EXIF orientation, a header that lies about the size)."""

import io
import os
import time

import cv2
import numpy as np
from PIL import Image


def photo(width: int = 320, height: int = 240) -> np.ndarray:
    """A photo-like BGR array: a gradient with a rectangle."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack(
        [(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), np.full_like(x, 90)]
    ).astype(np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (20, 20, 220), -1)
    return image


def encode(image: np.ndarray, ext: str = ".jpg", *params: int) -> bytes:
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def unique_jpeg(seed: int, width: int = 160, height: int = 120) -> bytes:
    """A JPEG no other seed gives: the seed rides in a comment (COM) segment."""
    data = encode(photo(width, height), ".jpg")
    comment = f"test image {seed} {os.getpid()} {time.time_ns()}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return data[:2] + segment + data[2:]


def pil_jpeg(mode: str, width: int = 64, height: int = 48, **save: object) -> bytes:
    rgb = Image.fromarray(cv2.cvtColor(photo(width, height), cv2.COLOR_BGR2RGB))
    buffer = io.BytesIO()
    rgb.convert(mode).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def jpeg_with_exif_orientation(orientation: int, width: int = 64, height: int = 48) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    return pil_jpeg("RGB", width, height, exif=exif.tobytes())


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) claims width x height pixels."""
    data = bytearray(encode(photo(16, 16), ".jpg"))
    sof = data.find(b"\xff\xc0")
    assert sof != -1, "baseline JPEG expected"
    # FF C0, length (2), precision (1), height (2), width (2)
    data[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    data[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(data)
