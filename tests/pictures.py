"""Real image bytes for tests, and what an officer opening the group's copy would find."""

from __future__ import annotations

import io

from PIL import ExifTags, Image

RED = (220, 20, 20)
BLUE = (20, 20, 220)
MODEL = "SM-S921B of Tran Van Bian"
AUTHOR = b"Tran Van Bian, 0912 345 678"
# The EXIF entry that points to the GPS block, as Pillow writes it (big-endian TIFF).
GPS_POINTER = b"\x88\x25\x00\x04\x00\x00\x00\x01"
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/"
# Somewhere in Thái Nguyên, in degrees, minutes, seconds.
LATITUDE = (21.0, 35.0, 39.12)
LONGITUDE = (105.0, 50.0, 53.5)


def jpeg(width: int = 64, height: int = 48, colour: tuple[int, int, int] = RED) -> bytes:
    """A plain JPEG of one colour, with no metadata."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=95)
    return out.getvalue()


def phone_photo(width: int = 64, height: int = 32) -> bytes:
    """A JPEG as a phone writes it: left half red, right half blue, stored sideways.

    EXIF names the phone and holds the GPS position; Orientation 6 says "turn 90° clockwise
    to show", so the upright picture is tall, red on top. XMP and a comment name the author.
    """
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Samsung"
    exif[ExifTags.Base.Model] = MODEL
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: LATITUDE,
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: LONGITUDE,
    }
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>' + AUTHOR + b"</dc:creator>"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif, xmp=xmp + b"</x:xmpmeta>", comment=AUTHOR)
    return out.getvalue()


def picture(data: bytes) -> tuple[str, tuple[int, int]]:
    """The format and size of image bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return str(image.format), image.size


def colour_at(data: bytes, x: int, y: int) -> tuple[int, ...]:
    """The RGB colour of one pixel."""
    with Image.open(io.BytesIO(data)) as image:
        pixel = image.convert("RGB").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel


def near(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    """Whether a colour is the expected one, give or take JPEG's rounding."""
    return all(abs(a - b) <= 24 for a, b in zip(colour, expected, strict=True))


def metadata_left(data: bytes) -> list[str]:
    """Every kind of metadata found in image bytes; empty for a clean image."""
    found = []
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        if len(exif):
            found.append(f"EXIF tags {sorted(exif)}")
        if exif.get_ifd(ExifTags.IFD.GPSInfo):
            found.append("GPS")
        keys = ("exif", "xmp", "comment", "icc_profile")
        found += [f"info[{key}]" for key in keys if key in image.info]
        if getattr(image, "text", None):
            found.append("PNG text")
    raw = {
        "EXIF header": EXIF_HEADER,
        "GPS pointer": GPS_POINTER,
        "XMP header": XMP_HEADER,
        "phone model": MODEL.encode(),
        "author": AUTHOR,
    }
    found += [name for name, marker in raw.items() if marker in data]
    return found
