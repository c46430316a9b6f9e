"""Images reach the officers cleaned of EXIF, XMP and GPS; other files pass with a warning."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from collections.abc import Awaitable, Callable

import pytest
from PIL import ExifTags, Image, PngImagePlugin
from sqlmodel import select

from bot.app import Runtime
from bot.emulator import BotApiEmulator, EmuMessage
from chat import Group, Person
from conftest import GROUP_ID
from handlers import cards, images
from pictures import (
    AUTHOR,
    BLUE,
    MODEL,
    RED,
    colour_at,
    jpeg,
    metadata_left,
    near,
    phone_photo,
    picture,
)
from storage.db import unit_of_work
from storage.models import TipAttachment

PDF = b"%PDF-1.4\n1 0 obj << /Author (Tran Van Bian) >> endobj\n%%EOF"
AS_IS = (
    "⚠️ Tệp {files} được gửi nguyên trạng: có thể chứa thông tin ẩn (siêu dữ liệu) về người "
    "tạo ra tệp. Không chia sẻ ra ngoài."
)
WITHHELD = (
    "🛡 Tin #1 · tệp 1/1: ảnh không đọc được nên không gửi vào nhóm, để không lộ vị trí hay "
    "thiết bị của người báo tin."
)

Attach = Callable[[], Awaitable[EmuMessage]]


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


async def send_tip_with(resident: Person, officers: Group, *attach: Attach) -> EmuMessage:
    """Walk a tip with these files attached; return its card in the group."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Không rõ")
    await resident.taps("⏭ Bỏ qua")
    await resident.says("Nhà số 5 bán ma túy, ảnh chụp tối qua")
    for send in attach:
        await send()
        await resident.sees()
    await resident.taps(f"✅ Xong ({len(attach)} tệp)")
    await resident.taps("✅ Gửi tin")
    return await officers.sees()


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


def test_an_iphone_heic_is_cleaned_too() -> None:
    with Image.open(io.BytesIO(phone_photo())) as source:
        original = io.BytesIO()
        source.save(original, "HEIF", exif=source.getexif(), xmp=source.info["xmp"])
    with Image.open(io.BytesIO(original.getvalue())) as heic:
        assert heic.format == "HEIF" and heic.getexif().get_ifd(ExifTags.IFD.GPSInfo)

    cleaned = images.clean(original.getvalue())

    assert metadata_left(cleaned.data) == []
    # HEIF keeps its rotation in its own box, which the decoder applies; this one has none.
    assert picture(cleaned.data) == ("JPEG", (64, 32))


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


# In the officers' group


async def test_a_photo_reaches_the_group_without_its_gps_and_upright(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    logs: pytest.LogCaptureFixture,
) -> None:
    sent = phone_photo()
    card = await send_tip_with(
        resident, officers, lambda: emulator.send_photo(resident.user, sent)
    )
    photo = await officers.sees()

    assert (photo.kind, photo.caption, photo.reply_to) == (
        "photo",
        "Tin #1 · tệp 1/1",
        card.message_id,
    )
    assert photo.file_bytes is not None and photo.file_bytes != sent
    assert metadata_left(photo.file_bytes) == []
    assert picture(photo.file_bytes) == ("JPEG", (32, 64))
    assert near(colour_at(photo.file_bytes, 16, 8), RED)
    [upload] = [c for c in emulator.calls_to("sendPhoto") if c.params.get("chat_id") == GROUP_ID]
    assert upload.uploads == ("photo",)  # new bytes, not the resident's file id
    assert "⚠️" not in card.text  # nothing passed as sent
    # Pillow logs every EXIF tag at DEBUG, the level the suite runs at.
    assert MODEL not in logs.text and "105.0" not in logs.text and "Samsung" not in logs.text


async def test_a_photo_sent_as_a_file_arrives_as_a_clean_photo_without_its_name(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    def attach() -> Awaitable[EmuMessage]:
        return emulator.send_document(
            resident.user, phone_photo(), file_name="IMG_20261122_Bian.jpg", mime_type="image/jpeg"
        )

    card = await send_tip_with(resident, officers, attach)
    photo = await officers.sees()

    assert photo.kind == "photo" and photo.reply_to == card.message_id
    assert photo.file_bytes is not None and metadata_left(photo.file_bytes) == []
    assert picture(photo.file_bytes) == ("JPEG", (32, 64))
    assert near(colour_at(photo.file_bytes, 16, 56), BLUE)
    group = json.dumps([m.raw for m in officers.messages()], ensure_ascii=False)
    assert "Bian" not in group and "IMG_" not in group
    assert "⚠️" not in card.text


async def test_a_long_screenshot_sent_as_a_file_arrives_clean_as_a_file(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    long = jpeg(60, 1500)

    def attach() -> Awaitable[EmuMessage]:
        return emulator.send_document(resident.user, long, file_name="Screenshot_Bian.jpg")

    await send_tip_with(resident, officers, attach)
    document = await officers.sees()

    assert document.kind == "document" and document.file is not None
    assert document.file.file_name == "tin-1-1.jpg"
    assert document.file_bytes is not None and picture(document.file_bytes) == ("JPEG", (60, 1500))
    assert document.file_bytes != long  # re-encoded, not passed on


async def test_a_pdf_passes_unchanged_and_the_card_warns_about_its_metadata(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    sent: list[EmuMessage] = []

    async def attach_pdf() -> EmuMessage:
        sent.append(
            await emulator.send_document(
                resident.user, PDF, file_name="danh-sach.pdf", mime_type="application/pdf"
            )
        )
        return sent[-1]

    def attach_photo() -> Awaitable[EmuMessage]:
        return emulator.send_photo(resident.user, phone_photo())

    card = await send_tip_with(resident, officers, attach_pdf, attach_photo)
    document, photo = await officers.sees(), await officers.sees()

    assert AS_IS.format(files="1") in card.text.splitlines()
    assert (document.kind, document.file_id, document.file_bytes) == (
        "document",
        sent[0].file_id,
        PDF,
    )
    assert document.caption == "Tin #1 · tệp 1/2"
    assert photo.file_bytes is not None and metadata_left(photo.file_bytes) == []
    assert emulator.calls_to("getFile") and all(
        c.params["file_id"] != sent[0].file_id for c in emulator.calls_to("getFile")
    )  # only the photo was fetched


async def test_the_warning_names_every_file_passed_as_sent_in_english_too(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    card = await send_tip_with(
        resident,
        officers,
        lambda: emulator.send_voice(resident.user, b"OggS voice"),
        lambda: emulator.send_photo(resident.user, jpeg()),
        lambda: emulator.send_video(resident.user, b"\x00\x00\x00\x18ftypmp42"),
    )
    assert AS_IS.format(files="1, 3") in card.text
    english = runtime.services.catalogue.text("en", "media.as_is", files="1, 3")
    assert english.startswith("⚠️ File(s) 1, 3 passed on as sent")


async def test_an_image_that_cannot_be_decoded_is_never_posted(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    logs: pytest.LogCaptureFixture,
) -> None:
    broken = b"\xff\xd8\xff\xe1" + b"Exif\x00\x00MM" + b"GPS 21.5942 N 105.8482 E" * 4
    sent: list[EmuMessage] = []

    async def attach() -> EmuMessage:
        sent.append(
            await emulator.send_document(
                resident.user, broken, file_name="IMG_Bian.jpg", mime_type="image/jpeg"
            )
        )
        return sent[-1]

    card = await send_tip_with(resident, officers, attach)
    note = await officers.sees()

    assert (note.kind, note.text, note.reply_to) == ("text", WITHHELD, card.message_id)
    assert [m.kind for m in officers.messages()] == ["text", "text"]
    to_group = [c.params for c in emulator.calls if c.params.get("chat_id") == GROUP_ID]
    group = json.dumps(to_group, default=str)
    assert sent[0].file_id is not None and sent[0].file_id not in group
    assert "⚠️" not in card.text  # it is withheld, not passed as sent
    warning = [r.getMessage() for r in logs.records if "withheld" in r.getMessage()]
    assert len(warning) == 1
    assert warning[0].startswith("Tip #1: image 1/1 withheld from the group (undecodable: ")
    assert "IMG_Bian" not in logs.text and sent[0].file_id not in logs.text


async def test_an_image_too_big_to_download_is_withheld(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    huge = b"\xff\xd8\xff\xe0" + b"\0" * (20 * 1024 * 1024)

    def attach() -> Awaitable[EmuMessage]:
        return emulator.send_document(
            resident.user, huge, file_name="x.jpg", mime_type="image/jpeg"
        )

    await send_tip_with(resident, officers, attach)
    note = await officers.sees()

    assert note.text == WITHHELD
    assert [c.description for c in emulator.calls_to("getFile")] == [
        "Bad Request: file is too big"
    ]
    assert await cards.post_pending(runtime.services) == 0  # the note settles it: no retries


async def test_a_download_that_fails_for_now_is_retried_by_the_repost_job(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    # A flood wait longer than the adapter waits out: the download fails at once, for now.
    emulator.fail("getFile", error_code=429, retry_after=600)
    card = await send_tip_with(
        resident, officers, lambda: emulator.send_photo(resident.user, phone_photo())
    )
    await emulator.wait_until(lambda emu: any(c.status == 429 for c in emu.calls_to("getFile")))
    assert [m.kind for m in officers.messages()] == ["text"]  # neither the photo nor a note

    assert await cards.post_pending(runtime.services) == 1
    photo = await officers.sees()
    assert photo.kind == "photo" and photo.reply_to == card.message_id
    assert photo.file_bytes is not None and metadata_left(photo.file_bytes) == []
    async with unit_of_work(runtime.services.sessions) as session:
        [item] = (await session.exec(select(TipAttachment))).all()
    assert item.posted_message_id == str(photo.message_id)
