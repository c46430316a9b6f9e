"""Images made safe to pass on: decoded and re-encoded fresh, with no EXIF, XMP, GPS or text."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

# iPhones send photos as HEIC when they go "as a file": without this, they could not be cleaned.
register_heif_opener()

# Telegram's getFile stops at 20 MB, so a bigger input cannot be a file a resident sent.
MAX_BYTES: Final = 20 * 1024 * 1024
# Decompression bombs: a few kilobytes can declare gigapixels. Pillow's own limit, checked on
# the header before any pixel is decoded (Pillow only warns below twice this).
MAX_PIXELS: Final = Image.MAX_IMAGE_PIXELS or 89_478_485
# What phones, cameras and screenshot tools produce. Anything else is refused rather than
# handed to a rarely used decoder (EPS would even start Ghostscript).
FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "HEIF")
# Telegram keeps photos at most 2560 px on the long side; a bigger upload only costs time,
# and stays well under sendPhoto's 10 MB and width + height <= 10,000.
PHOTO_SIDE: Final = 2560
# sendPhoto refuses images longer than 20 times their width (or wider than 20 times their
# height); those go as documents, at full size, so that a long screenshot stays readable.
PHOTO_RATIO: Final = 20
JPEG_QUALITY: Final = 90
IMAGE_EXTENSIONS: Final = frozenset(
    {"jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif"}
)


class ImageRejected(Exception):
    """The bytes are not an image that can be cleaned: the original must not be passed on."""


@dataclass(frozen=True, slots=True)
class CleanImage:
    """A picture re-encoded from its pixels alone: nothing of the original file survives."""

    data: bytes
    mime_type: str
    extension: str
    width: int
    height: int

    @property
    def fits_photo(self) -> bool:
        """Return whether a chat platform takes it as a photo (not too long, not too wide)."""
        return max(self.width, self.height) <= PHOTO_RATIO * min(self.width, self.height)


def is_image(mime_type: str | None, file_name: str | None) -> bool:
    """Return whether a file claims to be an image, by its type or its name's extension."""
    if mime_type and mime_type.lower().startswith("image/"):
        return True
    suffix = PurePosixPath(file_name or "").suffix.lower().lstrip(".")
    return suffix in IMAGE_EXTENSIONS


def clean(data: bytes) -> CleanImage:
    """Return the picture in ``data`` upright and re-encoded with no metadata at all.

    JPEG at quality 90, or PNG when the picture has transparency. Raise ImageRejected for
    anything too big, not an image of a known format, or broken.
    """
    if len(data) > MAX_BYTES:
        raise ImageRejected("too many bytes")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as source:
            if source.width * source.height > MAX_PIXELS:
                raise ImageRejected("too many pixels")
            return _reencode(source)
    except ImageRejected:
        raise
    except Exception as error:
        # Hostile or damaged input makes Pillow raise almost anything (OSError, SyntaxError,
        # ValueError, struct.error, a bomb warning turned error...): every one means refuse.
        raise ImageRejected(type(error).__name__) from error


def _reencode(source: Image.Image) -> CleanImage:
    # An animated GIF or WebP keeps its first frame only, as a still: motion is rarely the
    # evidence, and re-encoding every frame would multiply the work and the bomb surface.
    if source.format in ("JPEG", "MPO"):
        # Decode big JPEGs at 1/2, 1/4 or 1/8 scale straight away; never below PHOTO_SIDE.
        source.draft("RGB", (PHOTO_SIDE, PHOTO_SIDE))
    upright = ImageOps.exif_transpose(source) or source
    alpha = upright.has_transparency_data
    pixels = upright.convert("RGBA" if alpha else "RGB")
    if max(pixels.size) <= PHOTO_RATIO * min(pixels.size):
        pixels.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    # convert() copies the source's info (EXIF, XMP, ICC, comments, PNG text) and encoders
    # read some of it back; a new image has none, so only the pixels cross over.
    fresh = Image.new(pixels.mode, pixels.size)
    fresh.paste(pixels)
    out = io.BytesIO()
    if alpha:
        fresh.save(out, "PNG")
        mime_type, extension = "image/png", "png"
    else:
        fresh.save(out, "JPEG", quality=JPEG_QUALITY)
        mime_type, extension = "image/jpeg", "jpg"
    return CleanImage(out.getvalue(), mime_type, extension, fresh.width, fresh.height)
