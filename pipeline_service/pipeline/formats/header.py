"""What a header says about an image, and the limits checked on it before any decode."""

from dataclasses import dataclass

from pipeline_service.errors import ImageTooLarge, UnsupportedImage


@dataclass(frozen=True, slots=True)
class ImageHeader:
    format: str  # JPEG, PNG, WebP, BMP
    width: int  # as stored
    height: int
    orientation: int = 1  # EXIF: 5..8 turn the image a quarter
    scans: int = 1  # JPEG: progressive images have several
    components: int = 3  # JPEG: 4 is CMYK/YCCK
    bits_per_pixel: int = 0  # BMP

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once the EXIF orientation is applied."""
        turned = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if turned else (self.width, self.height)


def unreadable(image_format: str, why: str) -> UnsupportedImage:
    """A file of an accepted format that cannot be decoded as it is (a 415)."""
    return UnsupportedImage(
        f"The uploaded {image_format} image could not be decoded: {why}",
        "send the complete, undamaged file",
    )


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """The settings that bound one decode (MAX_IMAGE_PIXELS and the others, config.py)."""

    max_pixels: int = 50_000_000
    max_pixels_per_byte: int = 1000
    pixels_per_byte_from: int = 2_073_600
    max_jpeg_scans: int = 100


def check_limits(header: ImageHeader, file_bytes: int, limits: DecodeLimits) -> None:
    """Refuse, from the header alone, what would cost more than the file's content warrants."""
    width, height, pixels = header.width, header.height, header.pixels
    if pixels > limits.max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} = {pixels} pixels; the limit is "
            f"{limits.max_pixels} pixels (MAX_IMAGE_PIXELS)"
        )
    if pixels > limits.pixels_per_byte_from and pixels > file_bytes * limits.max_pixels_per_byte:
        raise UnsupportedImage(
            f"The uploaded {header.format} image declares {width}x{height} = {pixels} pixels in "
            f"{file_bytes} bytes ({pixels // max(file_bytes, 1)} pixels per byte); above "
            f"{limits.pixels_per_byte_from} pixels (PIXELS_PER_BYTE_FROM) an image may "
            f"declare at most {limits.max_pixels_per_byte} pixels per byte of file "
            "(MAX_PIXELS_PER_BYTE): its header does not match its content",
            "send the real image",
        )
    if header.scans > limits.max_jpeg_scans:
        raise UnsupportedImage(
            f"The uploaded JPEG image has {header.scans} scans; at most "
            f"{limits.max_jpeg_scans} are accepted (MAX_JPEG_SCANS), since each scan is "
            "another pass over the whole image",
            "save it as a baseline or a standard progressive JPEG",
        )
