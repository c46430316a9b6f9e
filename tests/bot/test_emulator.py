"""The Bot API emulator, driven by the real python-telegram-bot over real HTTP."""

import asyncio
import datetime as dtm
import struct
import time
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.emulator import BotApiEmulator, EmuUser, Limits

TOKEN = "123456:TEST"
GROUP_ID = -1001234567890


def png(width: int = 2, height: int = 3) -> bytes:
    """A valid grey PNG, so photo uploads pass the emulator's image check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


@pytest.fixture(autouse=True)
def timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns whenever it builds a RetryAfter (or reads a duration) unless opted in.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    emulator = BotApiEmulator(token=TOKEN, bot_username="homthu_test_bot", bot_name="Hòm thư")
    await emulator.start(host="127.0.0.1", port=0)
    yield emulator
    await emulator.stop()


@pytest.fixture
def alice(emu: BotApiEmulator) -> EmuUser:
    return emu.add_user(
        user_id=111,
        first_name="Nguyễn Thị",
        last_name="An",
        username="an_nguyen",
        language_code="vi",
    )


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Bấm", callback_data="press")]])
    await update.message.reply_text(
        f"echo: {update.message.text}", reply_markup=keyboard, do_quote=True
    )


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Đã nhận")
    await query.edit_message_text(f"pressed {query.data}")


@pytest.fixture
async def app(emu: BotApiEmulator) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(pressed))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=5))
    yield application
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


async def test_text_round_trip_through_application(
    emu: BotApiEmulator,
    alice: EmuUser,
    app: Application,  # type: ignore[type-arg]
) -> None:
    started = time.monotonic()
    sent = await emu.send_text(alice, "ma tuý ở hẻm 5")

    reply = await emu.next_bot_message(alice.id)

    assert time.monotonic() - started < 1.0, "long polling must return as soon as updates arrive"
    assert reply.text == "echo: ma tuý ở hẻm 5"
    assert reply.from_bot and reply.reply_to == sent.message_id
    assert reply.button_labels() == ["Bấm"]
    assert [m.from_bot for m in emu.messages(alice.id)] == [False, True]
    assert emu.calls_to("forwardMessage") == []


async def test_click_answers_callback_and_edits(
    emu: BotApiEmulator,
    alice: EmuUser,
    app: Application,  # type: ignore[type-arg]
) -> None:
    await emu.send_text(alice, "hi")
    reply = await emu.next_bot_message(alice.id)

    query_id = await emu.click(alice, reply, "Bấm")
    await emu.wait_until(lambda e: reply.edits == 1 and bool(e.callback_answers))

    assert emu.callback_answers == [
        {"callback_query_id": query_id, "text": "Đã nhận", "show_alert": False, "url": None}
    ]
    assert reply.text == "pressed press"
    # Editing without reply_markup drops the keyboard, exactly like Telegram.
    assert reply.buttons == []
    with pytest.raises(LookupError):
        await emu.click(alice, reply, "Bấm")


async def test_photo_upload_and_download(emu: BotApiEmulator, alice: EmuUser, bot: Bot) -> None:
    image = png(4, 5)
    sent = await bot.send_photo(alice.id, image, caption="<b>ảnh</b>", parse_mode=ParseMode.HTML)

    assert sent.caption == "ảnh"
    assert (sent.photo[-1].width, sent.photo[-1].height) == (4, 5)
    file = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == image

    again = await bot.send_photo(alice.id, sent.photo[-1].file_id)
    assert again.photo[-1].file_id == sent.photo[-1].file_id
    assert emu.bot_messages(alice.id)[-1].file_bytes == image


async def test_user_media_reaches_the_bot_and_can_be_downloaded(
    emu: BotApiEmulator, alice: EmuUser, bot: Bot
) -> None:
    await emu.send_photo(alice, png(), caption="chụp lén")
    await emu.send_document(alice, b"%PDF-1.4", file_name="a.pdf", mime_type="application/pdf")
    await emu.send_video(alice, b"video")
    await emu.send_voice(alice, b"voice")
    await emu.send_audio(alice, b"audio")
    await emu.send_sticker(alice)
    await emu.send_contact(alice, phone="0912345678", first_name="An", user_id=alice.id)
    await emu.send_location(alice, 19.8, 105.7)
    await emu.send_command(alice, "/start", args="abc")

    updates = await bot.get_updates(timeout=0)
    messages = [u.message for u in updates if u.message is not None]

    assert len(messages) == 9
    photo, document, video, voice, audio, sticker, contact, location, command = messages
    assert photo.caption == "chụp lén" and photo.photo
    assert document.document is not None and document.document.file_name == "a.pdf"
    assert video.video is not None and voice.voice is not None and audio.audio is not None
    assert sticker.sticker is not None
    assert contact.contact is not None and contact.contact.phone_number == "0912345678"
    assert location.location is not None and location.location.latitude == 19.8
    assert command.text == "/start abc" and command.entities[0].type == "bot_command"
    assert photo.from_user is not None and photo.from_user.language_code == "vi"
    assert photo.chat.type == "private" and photo.chat.id == alice.id
    file = await bot.get_file(document.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"%PDF-1.4"


async def test_media_group_uploads_via_attach(
    emu: BotApiEmulator, alice: EmuUser, bot: Bot
) -> None:
    sent = await bot.send_media_group(
        alice.id, [InputMediaPhoto(png(1, 1)), InputMediaPhoto(png(2, 2), caption="hai")]
    )

    assert len(sent) == 2 and sent[0].media_group_id == sent[1].media_group_id
    assert sent[1].caption == "hai"
    assert (sent[1].photo[-1].width, sent[1].photo[-1].height) == (2, 2)


async def test_validation_errors_surface_as_bad_request(
    emu: BotApiEmulator, alice: EmuUser, bot: Bot
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(alice.id, "x" * 4097)
    # Limits count the parsed text, not the markup.
    await bot.send_message(alice.id, f"<b>{'x' * 4096}</b>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(alice.id, "  ")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(alice.id, "<b>x</i>", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(999, "x")
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            alice.id,
            "x",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("a", callback_data="d" * 65)]]
            ),
        )
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(alice.id, "no-such-file-id")

    sent = await bot.send_message(alice.id, "a &lt; <i>b</i>", parse_mode=ParseMode.HTML)
    assert sent.text == "a < b"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("italic", 4, 1)]
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "a &lt; <i>b</i>", alice.id, sent.message_id, parse_mode="HTML"
        )
    await bot.delete_message(alice.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(alice.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("new", alice.id, sent.message_id)
    assert emu.messages(alice.id)[-1].deleted


async def test_messages_can_be_deleted_for_48_hours_only(
    emu: BotApiEmulator, alice: EmuUser, bot: Bot
) -> None:
    now = [1_790_000_000.0]
    emu.world.clock = lambda: now[0]
    old = await bot.send_message(alice.id, "hôm kia")
    typed = await emu.send_text(alice, "tin của Alice")
    now[0] += 48 * 3600 - 1
    fresh = await bot.send_message(alice.id, "hôm nay")
    assert emu.messages(alice.id)[-1].date == int(now[0])
    await bot.delete_message(alice.id, typed.message_id)
    now[0] += 1
    with pytest.raises(BadRequest, match=r"(?i)message can't be deleted"):
        await bot.delete_message(alice.id, old.message_id)
    # A batch holding a message too old is refused whole; gone ids alone are skipped.
    with pytest.raises(BadRequest, match=r"(?i)message can't be deleted"):
        await bot.delete_messages(alice.id, [old.message_id, fresh.message_id])
    assert [m.deleted for m in emu.messages(alice.id)] == [False, True, False]
    assert await bot.delete_messages(alice.id, [typed.message_id, fresh.message_id, 999])
    assert [m.deleted for m in emu.messages(alice.id)] == [False, True, True]


async def test_injected_faults(emu: BotApiEmulator, alice: EmuUser, bot: Bot) -> None:
    emu.fail("sendMessage", error_code=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(alice.id, "x")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    emu.fail("sendMessage", error_code=502, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match=r"(?i)Bad Gateway"):
            await bot.send_message(alice.id, "x")
    await bot.send_message(alice.id, "x")

    emu.block_bot(alice)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(alice.id, "x")
    assert [c.status for c in emu.calls_to("sendMessage")] == [429, 502, 502, 200, 403]
    assert emu.stats.too_many_requests == 1


async def test_rate_limits_answer_429(emu: BotApiEmulator, alice: EmuUser, bot: Bot) -> None:
    emu.limits = Limits(per_chat_per_second=1.0, per_chat_burst=2)
    await bot.send_message(alice.id, "1")
    await bot.send_message(alice.id, "1")
    with pytest.raises(RetryAfter):
        await bot.send_message(alice.id, "2")

    assert emu.stats.too_many_requests == 1
    assert emu.stats.sends_by_chat[alice.id] == 2
    assert emu.stats.duplicates == 1


async def test_copy_has_no_origin_but_forward_does(
    emu: BotApiEmulator, alice: EmuUser, bot: Bot
) -> None:
    group = emu.add_group(chat_id=GROUP_ID, title="CA phường Đông Cương")
    tip = await emu.send_photo(alice, png(), caption="tố giác")

    copied = await bot.copy_message(GROUP_ID, from_chat_id=alice.id, message_id=tip.message_id)

    copy = emu.bot_messages(group.id)[-1]
    assert copy.message_id == copied.message_id
    assert (copy.kind, copy.caption, copy.file_id) == ("photo", "tố giác", tip.file_id)
    assert "forward_origin" not in copy.raw and copy.raw["chat"]["type"] == "supergroup"
    assert emu.calls_to("forwardMessage") == []

    forwarded = await bot.forward_message(GROUP_ID, alice.id, tip.message_id)
    assert forwarded.forward_origin is not None
    assert forwarded.forward_origin.sender_user.id == alice.id  # type: ignore[attr-defined]
    assert len(emu.calls_to("forwardMessage")) == 1


async def test_get_updates_offset_and_long_polling(
    emu: BotApiEmulator, alice: EmuUser, bot: Bot
) -> None:
    for text in ("1", "2", "3"):
        await emu.send_text(alice, text)

    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first if u.message] == ["1", "2", "3"]
    assert len(await bot.get_updates(timeout=0)) == 3, "unconfirmed updates come back"
    rest = await bot.get_updates(offset=first[1].update_id, timeout=0)
    assert [u.update_id for u in rest] == [u.update_id for u in first[1:]]
    assert await bot.get_updates(offset=first[-1].update_id + 1, timeout=0) == ()
    assert await bot.get_updates(timeout=0) == ()

    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await emu.wait_until(lambda e: e.api.open_polls == 1)
    started = time.monotonic()
    await emu.send_text(alice, "4")
    updates = await poll
    assert [u.message.text for u in updates if u.message] == ["4"]
    assert time.monotonic() - started < 1.0

    await emu.send_text(alice, "5")
    last = await bot.get_updates(offset=-1, timeout=0)
    assert [u.message.text for u in last if u.message] == ["5"]


async def test_stop_releases_an_open_long_poll(emu: BotApiEmulator, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await emu.wait_until(lambda e: e.api.open_polls == 1)
    started = time.monotonic()
    await emu.stop()
    assert await poll == ()
    assert time.monotonic() - started < 2.0


async def test_bot_metadata_methods(emu: BotApiEmulator, bot: Bot) -> None:
    group = emu.add_group(chat_id=GROUP_ID, title="CA phường Đông Cương")
    assert bot.username == "homthu_test_bot" and bot.first_name == "Hòm thư"
    await bot.set_my_commands([("start", "Bắt đầu"), ("help", "Trợ giúp")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()
    chat = await bot.get_chat(group.id)
    assert chat.title == "CA phường Đông Cương"
    message = await bot.send_message(group.id, "ghim")
    await bot.pin_chat_message(group.id, message.message_id)
    assert emu.bot_messages(group.id)[-1].pinned
    assert (await bot.get_webhook_info()).url == ""


async def test_wrong_token_and_unknown_method(emu: BotApiEmulator) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("654321:WRONG", base_url=emu.base_url):
            pass
    async with Bot(TOKEN, base_url=emu.base_url) as client:
        with pytest.raises(EndPointNotFound):
            await client.do_api_request("noSuchMethod")


async def test_group_button_clicked_by_another_member(
    emu: BotApiEmulator,
    alice: EmuUser,
    app: Application,  # type: ignore[type-arg]
) -> None:
    bob = emu.add_user(user_id=222, first_name="Bình")
    group = emu.add_group(chat_id=GROUP_ID, title="CA phường Đông Cương")
    await emu.send_text(alice, "trong nhóm", chat=group)
    reply = await emu.next_bot_message(group.id)

    await emu.click(bob, reply, "press")
    await emu.wait_until(lambda e: reply.text == "pressed press")

    assert reply.raw["chat"] == {"id": GROUP_ID, "type": "supergroup", "title": group.title}


async def test_caption_and_markup_edits(emu: BotApiEmulator, alice: EmuUser, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Xoá", callback_data="del")]])
    sent = await bot.send_photo(alice.id, png(), caption="a", reply_markup=keyboard)
    message = emu.bot_messages(alice.id)[-1]

    await bot.edit_message_caption(alice.id, sent.message_id, caption="b", reply_markup=keyboard)
    assert (message.caption, message.button_labels(), message.edits) == ("b", ["Xoá"], 1)
    await bot.edit_message_reply_markup(alice.id, sent.message_id)
    assert message.buttons == [] and message.edits == 2
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(alice.id, sent.message_id)


async def test_json_form_and_query_bodies_answer_like_telegram(
    emu: BotApiEmulator, alice: EmuUser
) -> None:
    api = f"{emu.base_url}{TOKEN}"
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}
    async with aiohttp.ClientSession() as session:
        payload = {"chat_id": alice.id, "text": "json", "reply_markup": markup}
        async with session.post(f"{api}/sendMessage", json=payload) as response:
            assert response.status == 200
            assert (await response.json())["result"]["reply_markup"] == markup
        async with session.get(f"{api}/getMe") as response:
            assert (await response.json())["result"]["username"] == "homthu_test_bot"
        async with session.post(f"{api}/sendMessage", data={"chat_id": "111", "text": ""}) as r:
            assert r.status == 400
            assert await r.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        emu.fail("getMe", error_code=429, retry_after=3)
        async with session.get(f"{api}/getMe") as response:
            assert await response.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            }
        async with session.get(f"{emu.base_url}1:WRONG/getMe") as response:
            assert response.status == 401
            assert (await response.json())["description"] == "Unauthorized"

    assert emu.bot_messages(alice.id)[0].button_labels() == ["a"]


async def test_second_poller_terminates_the_first(emu: BotApiEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await emu.wait_until(lambda e: e.api.open_polls == 1)
    async with Bot(TOKEN, base_url=emu.base_url) as other:
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first
        assert await second == ()


async def test_injected_raw_updates_arrive_as_given(emu: BotApiEmulator, bot: Bot) -> None:
    await bot.get_updates(timeout=0, allowed_updates=["message"])
    member = {"chat": {"id": -5, "type": "group", "title": "G"}, "date": 1, "x-unknown": [1]}
    first = emu.inject_update({"my_chat_member": member})
    emu.inject_update({"message": {"text": "no chat, no date"}})
    assert emu.pending_updates() == 2

    raw = await bot._post("getUpdates", {"timeout": 0})  # the raw JSON, not parsed
    assert raw == [
        {"my_chat_member": member, "update_id": first},
        {"message": {"text": "no chat, no date"}, "update_id": first + 1},
    ]
    await bot._post("getUpdates", {"offset": first + 2, "timeout": 0})
    assert emu.pending_updates() == 0
