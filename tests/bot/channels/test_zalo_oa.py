"""The Zalo OA adapter against its emulator: signatures, replays, tokens, the window, media."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import zalo_channels
from sqlmodel import func, select
from zalo_channels import settle

from bot.app import Runtime, open_services
from bot.channels import zalo, zalo_oa
from bot.emulator.zalo_oa import PROFILE_PATHS, ZaloOAEmulator
from chat import Group
from conftest import SECRET, FakeClock
from handlers.events import (
    Choice,
    DeliveryError,
    DeliveryReason,
    EventKind,
    Outbound,
)
from handlers.menu import NAMESPACE as MENU
from handlers.router import callback
from pictures import jpeg
from storage.db import unit_of_work
from storage.models import SeenUpdate, ZaloToken

# The shared fixtures of zalo_channels, visible to pytest here.
oa = zalo_channels.oa
zbot = zalo_channels.zbot
zalo_runtime = zalo_channels.zalo_runtime
zalo_officers = zalo_channels.zalo_officers


async def seen_count(runtime: Runtime) -> int:
    async with unit_of_work(runtime.services.sessions) as session:
        return (await session.exec(select(func.count()).select_from(SeenUpdate))).one()


async def test_a_resident_writes_and_reads_the_zalo_privacy_promise(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    resident = oa.user()
    assert await oa.deliver(oa.text(resident, "/start")) == 200
    await settle(zalo_runtime)
    welcome = oa.texts_to(resident)
    assert welcome and "Hòm thư tố giác ma túy" in welcome[0]
    # A tap on an oa.query.hide button comes back as text: the payload, read as a choice.
    tap = oa.text(resident, zalo_oa.CHOICE_MARK + callback(MENU, "privacy"))
    assert await oa.deliver(tap) == 200
    await settle(zalo_runtime)
    promise = oa.texts_to(resident)[-1]
    assert "Zalo (công ty VNG) biết" in promise
    assert "Người quản trị Official Account này xem được cả cuộc trò chuyện" in promise
    # Never asked who the resident is.
    assert not [call for call in oa.calls if call.startswith(PROFILE_PATHS)]


async def test_choices_that_fit_go_as_buttons_and_a_tap_is_a_choice(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    resident = oa.user()
    oa.text(resident, "xin chào")  # the resident wrote: the window is open
    channel = zalo_runtime.services.channel(zalo_oa.NAME)
    choices = ((Choice("Có", "1:x:yes"), Choice("Không", "1:x:no")),)
    await channel.send(resident.id, Outbound(text="Bạn chắc chứ?", choices=choices))
    shown = oa.messages_to(resident)[-1]
    assert shown.text == "Bạn chắc chứ?"
    assert [(b["title"], b["type"]) for b in shown.buttons] == [
        ("Có", "oa.query.hide"),
        ("Không", "oa.query.hide"),
    ]
    assert zalo_runtime.zalo.http is not None
    event = await zalo_oa.to_inbound(
        oa.tap(resident, "Không"), zalo_runtime.zalo.http, zalo.MediaStore("t")
    )
    assert event is not None and event.kind is EventKind.CHOICE and event.choice == "1:x:no"
    # Six choices, or a label over 20 characters: no buttons; the core lists them instead.
    many = tuple((Choice(f"Lựa chọn {n}", f"1:x:{n}"),) for n in range(6))
    await channel.send(resident.id, Outbound(text="Chọn một", choices=many))
    assert oa.messages_to(resident)[-1].buttons == []


async def test_a_wrong_or_missing_signature_is_refused_and_changes_nothing(
    zalo_runtime: Runtime, oa: ZaloOAEmulator, emitted: io.StringIO
) -> None:
    resident = oa.user()
    forged = oa.text(resident, "Canary-forged-words")
    assert await oa.deliver(forged, key="not-the-oa-secret-key") == 401
    assert await oa.deliver(forged, signed=False) == 401
    # The right signature over another body does not carry over.
    tampered = json.dumps(forged).replace("forged", "altered").encode()
    assert await oa.deliver(tampered, key="not-the-oa-secret-key") == 401
    await settle(zalo_runtime)
    assert oa.messages_to(resident) == []
    assert await seen_count(zalo_runtime) == 0
    written = emitted.getvalue()
    assert "a delivery with a wrong signature was refused" in written
    assert "Canary" not in written


async def test_a_retried_delivery_is_answered_once(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    resident = oa.user()
    event = oa.text(resident, "/start")
    assert [await oa.deliver(event) for _ in range(3)] == [200, 200, 200]
    await settle(zalo_runtime)
    assert len(oa.texts_to(resident)) == 1
    assert await seen_count(zalo_runtime) == 1


async def test_bad_bodies_are_answered_without_a_crash(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    assert await oa.deliver(b"{not json", signed=False) == 400
    resident = oa.user()
    unknown = oa.envelope(resident, "user_reacted_message", {"react_icon": "/-heart"})
    assert await oa.deliver(unknown) == 200
    echo = oa.envelope(resident, "oa_send_text", {"text": "echo"})
    assert await oa.deliver(echo) == 200
    follow = oa.envelope(resident, "follow")
    assert await oa.deliver(follow) == 200
    huge = oa.text(resident, "x" * 70_000)
    assert await oa.deliver(huge) == 413
    await settle(zalo_runtime)
    assert oa.messages_to(resident) == []
    # Still serving.
    assert await oa.deliver(oa.text(resident, "/start")) == 200
    await settle(zalo_runtime)
    assert len(oa.texts_to(resident)) == 1


async def test_a_sticker_gets_a_kind_answer_and_the_menu(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    resident = oa.user()
    assert await oa.deliver(oa.sticker(resident)) == 200
    await settle(zalo_runtime)
    answer = oa.texts_to(resident)[-1]
    assert zalo_runtime.services.catalogue.text("vi", "common.unsupported") in answer


async def test_media_is_fetched_on_arrival_and_a_shared_location_is_a_point(
    zalo_runtime: Runtime, oa: ZaloOAEmulator, clock: FakeClock
) -> None:
    resident = oa.user()
    http = zalo_runtime.zalo.http
    assert http is not None
    store = zalo.MediaStore(zalo_oa.NAME)
    photo = jpeg()
    event = await zalo_oa.to_inbound(oa.image(resident, photo), http, store)
    assert event is not None and event.kind is EventKind.PHOTO and event.media is not None
    # Held here: the URL may expire before the tip is posted.
    clock.advance(hours=2)
    assert store.get(event.media.file_id) == photo
    expired = oa.image(resident, photo)
    clock.advance(hours=2)
    late = await zalo_oa.to_inbound(expired, http, store)
    assert late is not None and late.kind is EventKind.UNSUPPORTED
    document = await zalo_oa.to_inbound(
        oa.file(resident, b"%PDF-1.4", "bien-ban.pdf"), http, store
    )
    assert document is not None and document.kind is EventKind.DOCUMENT
    assert document.media is not None and document.media.file_name == "bien-ban.pdf"
    place = await zalo_oa.to_inbound(oa.location(resident, 21.0285, 105.8542), http, store)
    assert place is not None and place.location is not None
    assert (place.location.latitude, place.location.longitude) == (21.0285, 105.8542)
    broken = oa.location(resident, 91.0, 10.0)
    off_earth = await zalo_oa.to_inbound(broken, http, store)
    assert off_earth is not None and off_earth.kind is EventKind.UNSUPPORTED


async def test_the_seven_day_window_and_the_rate_limit_are_reasons(
    zalo_runtime: Runtime, oa: ZaloOAEmulator, clock: FakeClock
) -> None:
    resident = oa.user()
    oa.text(resident, "xin chào")
    channel = zalo_runtime.services.channel(zalo_oa.NAME)
    clock.advance(days=8)
    with pytest.raises(DeliveryError) as closed:
        await channel.send(resident.id, Outbound(text="Câu hỏi của cán bộ"))
    assert closed.value.reason is DeliveryReason.WINDOW_CLOSED and closed.value.permanent
    oa.text(resident, "tôi quay lại")
    oa.rate_limit = 0
    with pytest.raises(DeliveryError) as limited:
        await channel.send(resident.id, Outbound(text="Câu hỏi"), patient=False)
    assert limited.value.reason is DeliveryReason.RATE_LIMITED and not limited.value.permanent
    oa.rate_limit = None
    sent = await channel.send(resident.id, Outbound(text="Câu hỏi"))
    assert sent.message_id and oa.texts_to(resident) == ["Câu hỏi"]


async def test_an_expired_token_is_refreshed_once_and_stored_before_use(
    zalo_runtime: Runtime, oa: ZaloOAEmulator
) -> None:
    resident = oa.user()
    oa.text(resident, "xin chào")
    channel = zalo_runtime.services.channel(zalo_oa.NAME)
    await channel.send(resident.id, Outbound(text="Một"))
    refreshes = oa.refreshes
    oa.expire_access_tokens()
    await channel.send(resident.id, Outbound(text="Hai"))
    assert oa.refreshes == refreshes + 1
    assert oa.texts_to(resident) == ["Một", "Hai"]
    async with unit_of_work(zalo_runtime.services.sessions) as session:
        row = await session.get(ZaloToken, oa.app_id)
    assert row is not None and row.refresh_token in oa.refresh_tokens
    assert row.access_token in oa.access_tokens


@pytest.fixture
async def second_process(
    zalo_runtime: Runtime, clock: FakeClock
) -> AsyncIterator[zalo_oa.TokenKeeper]:
    """Another process's token keeper: its own engine and HTTP client, the same database."""
    settings = zalo_runtime.settings
    services = await open_services(settings, secret=SECRET, clock=clock)
    assert settings.zalo_oa_app_secret is not None
    async with aiohttp.ClientSession() as http:
        yield zalo_oa.TokenKeeper(
            settings.zalo_oa,
            app_secret=settings.zalo_oa_app_secret.get_secret_value(),
            sessions=services.sessions,
            clock=clock,
            http=http,
        )
    await services.sessions.kw["bind"].dispose()


async def test_two_processes_refreshing_at_once_keep_the_grant(
    zalo_runtime: Runtime, oa: ZaloOAEmulator, second_process: zalo_oa.TokenKeeper
) -> None:
    first = zalo_runtime.zalo.tokens
    assert first is not None
    current = await first.access_token()
    refreshes = oa.refreshes
    # Each OAuth answer takes a while, so the two overlap unless the lock serialises them.
    oa.oauth_delay = 0.2
    oa.expire_access_tokens()
    tokens = await asyncio.gather(
        first.refresh(stale=current), second_process.refresh(stale=current)
    )
    assert tokens[0] == tokens[1] != current
    assert oa.refreshes == refreshes + 1
    assert oa.grant_alive
    # The stored refresh token is the one that still works.
    async with unit_of_work(zalo_runtime.services.sessions) as session:
        row = await session.get(ZaloToken, oa.app_id)
    assert row is not None and row.refresh_token in oa.refresh_tokens


async def test_a_refused_refresh_is_logged_once_and_told_to_the_officers_once(
    zalo_runtime: Runtime,
    oa: ZaloOAEmulator,
    zalo_officers: Group,
    emitted: io.StringIO,
) -> None:
    tokens = zalo_runtime.zalo.tokens
    assert tokens is not None
    oa.refresh_tokens.clear()
    for _ in range(2):
        with pytest.raises(zalo_oa.RefreshFailed):
            await tokens.refresh(force=True)
    written = emitted.getvalue()
    assert written.count("Zalo OA token refresh refused: an OA admin must grant") == 1
    told = [m.text for m in zalo_officers.messages()]
    assert len(told) == 1 and "Zalo OA của phường không còn gửi được tin" in (told[0] or "")
    # The admin grants access again; at the next start the new token replaces the refused one.
    await tokens.seed(oa.grant())
    assert await tokens.refresh(force=True) in oa.access_tokens


async def test_a_chats_events_are_served_in_arrival_order(zalo_runtime: Runtime) -> None:
    services = zalo_runtime.services
    intake = zalo.Intake("test", services.sessions, services.clock)
    order: list[str] = []
    fetched = asyncio.Event()

    async def photo() -> None:
        await fetched.wait()  # a photo still being fetched from Zalo
        order.append("photo")

    other_served = asyncio.Event()

    async def record(what: str) -> None:
        order.append(what)
        if what == "someone else":
            other_served.set()

    intake.later(photo(), chat="resident")
    intake.later(record("done"), chat="resident")
    intake.later(record("someone else"), chat="neighbour")
    # Another chat is not held up by the photo.
    await other_served.wait()
    fetched.set()
    await intake.idle()
    assert order == ["someone else", "photo", "done"]
