"""Images are re-encoded from their pixels alone: no EXIF, XMP, GPS, comment or text survives."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import pytest
from PIL import Image, PngImagePlugin

from handlers import images
from pictures import (
    AUTHOR,
    BLUE,
    RED,
    colour_at,
    jpeg,
    metadata_left,
    near,
    phone_photo,
    picture,
)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size in its header and holds almost no pixel data: a bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


# The cleaning itself


def test_a_phone_photo_loses_every_trace_of_its_author_and_stands_upright() -> None:
    original = phone_photo()
    assert len(metadata_left(original)) == 10  # the checks do see each kind of metadata

    cleaned = images.clean(original)

    assert metadata_left(cleaned.data) == []
    assert (cleaned.mime_type, cleaned.extension) == ("image/jpeg", "jpg")
    assert picture(cleaned.data) == ("JPEG", (32, 64)) == ("JPEG", (cleaned.width, cleaned.height))
    assert near(colour_at(cleaned.data, 16, 8), RED)  # the left half, turned to the top
    assert near(colour_at(cleaned.data, 16, 56), BLUE)


def test_a_transparent_png_stays_png_without_its_text_chunks() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", AUTHOR.decode())
    text.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>GPS 21.59, 105.84</x:xmpmeta>")
    out = io.BytesIO()
    Image.new("RGBA", (30, 20), (0, 128, 0, 100)).save(out, "PNG", pnginfo=text)
    assert AUTHOR in out.getvalue()

    cleaned = images.clean(out.getvalue())

    assert (cleaned.mime_type, picture(cleaned.data)) == ("image/png", ("PNG", (30, 20)))
    assert metadata_left(cleaned.data) == []
    assert b"xmpmeta" not in cleaned.data and b"tEXt" not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as image:
        assert image.getpixel((5, 5)) == (0, 128, 0, 100)


def test_an_animated_gif_keeps_its_first_frame_as_a_still() -> None:
    frames = [Image.new("P", (16, 16), index) for index in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=AUTHOR)

    cleaned = images.clean(out.getvalue())

    assert picture(cleaned.data) == ("JPEG", (16, 16))
    assert AUTHOR not in cleaned.data and metadata_left(cleaned.data) == []


def test_a_big_photo_is_scaled_to_telegrams_size_and_a_long_one_is_not() -> None:
    big = images.clean(jpeg(2600, 1300))
    assert (big.width, big.height, big.fits_photo) == (2560, 1280, True)
    long = images.clean(jpeg(100, 2500))  # a scrolling screenshot: sendPhoto would refuse it
    assert (long.width, long.height, long.fits_photo) == (100, 2500, False)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        jpeg()[:40],  # a JPEG cut off after its header
        png_header_only(40_000, 40_000),  # 1.6 gigapixels declared in a few bytes
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # never handed to Ghostscript
        b"\xff" * (images.MAX_BYTES + 1),
    ],
    ids=["empty", "text", "truncated", "bomb", "eps", "over-20-MB"],
)
def test_what_cannot_be_cleaned_is_refused(data: bytes) -> None:
    with pytest.raises(images.ImageRejected):
        images.clean(data)


def test_an_image_just_over_pillows_limit_is_refused_where_pillow_only_warns() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(images.ImageRejected, match="too many pixels"):
            images.clean(png_header_only(10_000, 9_000))


def test_images_are_told_by_type_or_name() -> None:
    assert images.is_image("image/jpeg", None)
    assert images.is_image("IMAGE/HEIC", "x")
    assert images.is_image("application/octet-stream", "IMG_0042.JPG")
    assert not images.is_image("application/pdf", "danh-sach.pdf")
    assert not images.is_image(None, None)
