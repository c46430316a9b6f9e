"""The Zalo Bot adapter against its emulator: both envelopes, secrets, photos, polling, quota."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
import zalo_channels
from zalo_channels import settle, zalo_settings

from bot.app import Runtime, open_services
from bot.channels import zalo, zalo_bot
from bot.config import Settings
from bot.emulator import BotApiEmulator
from bot.emulator.zalo_bot import ZaloBotEmulator
from bot.emulator.zalo_oa import ZaloOAEmulator
from conftest import SECRET, TOKEN, FakeClock
from handlers.events import DeliveryError, DeliveryReason, EventKind, Outbound
from pictures import jpeg

# The shared fixtures of zalo_channels, visible to pytest here.
oa = zalo_channels.oa
zbot = zalo_channels.zbot
zalo_runtime = zalo_channels.zalo_runtime


@pytest.mark.parametrize("envelope", ["wrapped", "bare"])
async def test_both_envelopes_are_served(
    zalo_runtime: Runtime, zbot: ZaloBotEmulator, envelope: str
) -> None:
    zbot.envelope = envelope  # type: ignore[assignment]
    resident = zbot.user()
    assert await zbot.deliver(zbot.text(resident, "/start")) == 200
    await settle(zalo_runtime)
    welcome = zbot.texts_to(resident)
    assert len(welcome) == 1 and "Hòm thư tố giác ma túy" in welcome[0]


async def test_a_wrong_secret_is_refused_and_changes_nothing(
    zalo_runtime: Runtime, zbot: ZaloBotEmulator, emitted: io.StringIO
) -> None:
    resident = zbot.user()
    update = zbot.text(resident, "Canary-forged-words")
    assert await zbot.deliver(update, secret="a-guessed-secret") == 401
    assert await zbot.deliver(update, send_secret=False) == 401
    await settle(zalo_runtime)
    assert zbot.messages_to(resident) == []
    written = emitted.getvalue()
    assert "a delivery with a wrong secret was refused" in written
    assert "Canary" not in written


async def test_bad_bodies_and_repeats(zalo_runtime: Runtime, zbot: ZaloBotEmulator) -> None:
    resident = zbot.user()
    assert await zbot.deliver(b"[1, 2", send_secret=True) == 400
    assert await zbot.deliver(b'{"ok": true}') == 200
    assert await zbot.deliver(zbot.update(resident, "message.reaction.received")) == 200
    update = zbot.text(resident, "/start")
    assert [await zbot.deliver(update) for _ in range(2)] == [200, 200]
    await settle(zalo_runtime)
    assert len(zbot.texts_to(resident)) == 1


async def test_unsupported_content_gets_a_kind_answer(
    zalo_runtime: Runtime, zbot: ZaloBotEmulator
) -> None:
    resident = zbot.user()
    for update in (zbot.sticker(resident), zbot.unsupported(resident)):
        assert await zbot.deliver(update) == 200
        await settle(zalo_runtime)
    unsupported = zalo_runtime.services.catalogue.text("vi", "common.unsupported")
    answers = zbot.texts_to(resident)
    assert len(answers) == 2 and all(unsupported in answer for answer in answers)


@pytest.mark.parametrize("field", ["photo_url", "photo"])
async def test_a_photo_is_fetched_on_arrival_under_either_field(
    zalo_runtime: Runtime, zbot: ZaloBotEmulator, field: str
) -> None:
    zbot.photo_field = field  # type: ignore[assignment]
    resident = zbot.user()
    photo = jpeg()
    http = zalo_runtime.zalo.http
    assert http is not None
    store = zalo.MediaStore(zalo_bot.NAME)
    event = await zalo_bot.to_inbound(zbot.image(resident, photo, "ảnh"), http, store)
    assert event is not None and event.kind is EventKind.PHOTO and event.media is not None
    assert event.text == "ảnh" and store.get(event.media.file_id) == photo
    # Only the chat's id is read about the person.
    assert event.chat == resident.id and event.user_name is None


async def test_a_spent_quota_is_a_reason_and_long_texts_are_split(
    zalo_runtime: Runtime, zbot: ZaloBotEmulator
) -> None:
    resident = zbot.user()
    channel = zalo_runtime.services.channel(zalo_bot.NAME)
    sent = await channel.send(resident.id, Outbound(text="Một câu. " * 300))
    assert len(sent.message_ids) == 2
    assert all(len(text) <= 2000 for text in zbot.texts_to(resident))
    zbot.quota = zbot.used
    with pytest.raises(DeliveryError) as spent:
        await channel.send(resident.id, Outbound(text="Tin tháng này"))
    assert spent.value.reason is DeliveryReason.QUOTA_SPENT and spent.value.permanent


@pytest.fixture
async def polling_runtime(
    settings: Settings,
    clock: FakeClock,
    emulator: BotApiEmulator,
    oa: ZaloOAEmulator,
    zbot: ZaloBotEmulator,
) -> AsyncIterator[Runtime]:
    """The real bot with the Zalo bot polling getUpdates."""
    configured = zalo_settings(settings, oa, zbot, bot_mode="polling")
    services = await open_services(configured, secret=SECRET, clock=clock)
    bot = Runtime(configured, services, token=TOKEN)
    bot.zalo.poll_interval, bot.zalo.poll_timeout = 0.01, 1
    await bot.start(jobs=False)
    yield bot
    await bot.stop()


async def test_polling_drops_the_updates_that_come_back(
    polling_runtime: Runtime, zbot: ZaloBotEmulator
) -> None:
    resident = zbot.user()
    # getUpdates has no offset: each update is returned again on the next poll.
    zbot.replays = 2
    zbot.queue(zbot.text(resident, "/start"))
    zbot.queue(zbot.text(resident, "/riengtu"))
    for _ in range(200):
        await settle(polling_runtime)
        if len(zbot.texts_to(resident)) >= 2 and zbot.calls.count("getUpdates") > 8:
            break
        await asyncio.sleep(0.02)
    texts = zbot.texts_to(resident)
    assert len(texts) == 2
    assert "Hòm thư tố giác ma túy" in texts[0] and "Zalo (công ty VNG) biết" in texts[1]
