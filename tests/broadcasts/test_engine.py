"""The delivery engine against the Bot API emulator: a real PTB Bot over HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from broadcast_support import WARD, add_broadcast, subscribe
from sqlmodel import col, select
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.app import open_services
from bot.channels.telegram import TelegramChannel
from bot.config import BroadcastsSection, Settings
from bot.emulator import BotApiEmulator, Limits
from broadcasts import engine
from conftest import SECRET, TOKEN, FakeClock
from handlers.context import Services
from storage import broadcasts as repo
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus, Delivery, DeliveryStatus, Subscription

FIRST_ID = 5_550_100_000
TEXT = "Tháng này: tác hại của ma túy."


class FakeSleeper:
    """Sleeps by moving the fake clock, at once; remembers every wait asked for."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


def broadcasts_settings(settings: Settings, **values: object) -> Settings:
    """The settings with a [broadcasts] table: no quiet hours unless asked for."""
    section = BroadcastsSection(**{"quiet_hours": "", "progress_seconds": 0.05, **values})
    return settings.model_copy(update={"broadcasts": section})


@pytest.fixture
async def services(
    settings: Settings, clock: FakeClock, emulator: BotApiEmulator
) -> AsyncIterator[Services]:
    """Services with a Telegram channel around a bare Bot talking to the emulator."""
    built = await open_services(broadcasts_settings(settings), secret=SECRET, clock=clock)
    bot = Bot(
        TOKEN,
        base_url=emulator.base_url,
        base_file_url=emulator.base_file_url,
        request=HTTPXRequest(connection_pool_size=32),
    )
    await bot.initialize()
    built.channels["telegram"] = TelegramChannel(bot)
    yield built
    await bot.shutdown()
    await built.sessions.kw["bind"].dispose()


def residents(emulator: BotApiEmulator, count: int, first: int = FIRST_ID) -> list[int]:
    """Residents who have started the bot; their chat ids."""
    ids = list(range(first, first + count))
    for chat_id in ids:
        emulator.add_user(user_id=chat_id, first_name=f"Cư dân {chat_id}")
    return ids


def received(emulator: BotApiEmulator, chat_id: int) -> list[str]:
    """What the bot put in a resident's chat: texts, or "photo" for a photo."""
    return [m.text or m.caption or m.kind for m in emulator.bot_messages(chat_id)]


async def deliveries(services: Services, broadcast_id: int) -> list[Delivery]:
    async with unit_of_work(services.sessions) as session:
        result = await session.exec(
            select(Delivery)
            .where(Delivery.broadcast_id == broadcast_id)
            .order_by(col(Delivery.id))
        )
        return list(result.all())


async def broadcast_row(services: Services, broadcast_id: int) -> Broadcast:
    async with unit_of_work(services.sessions) as session:
        row = await session.get(Broadcast, broadcast_id)
        assert row is not None
        return row


async def test_every_subscriber_receives_the_broadcast_exactly_once(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    emulator.limits = Limits()  # Telegram's: 30 a second overall, 1 a second per chat
    chats = residents(emulator, 40)
    await subscribe(services.sessions, services.keyring, chats[:30], clock.now)
    await subscribe(services.sessions, services.keyring, chats[30:35], clock.now, ward="other")
    await subscribe(services.sessions, services.keyring, chats[35:], clock.now)
    async with unit_of_work(services.sessions) as session:
        gone = services.keyring.chat_key("telegram", str(chats[39]))
        assert await repo.unsubscribe(session=session, chat_key=gone, now=clock.now, reason="user")
    broadcast_id = await add_broadcast(services)
    seen: list[tuple[int, int]] = []

    assert await engine.enqueue(services, broadcast_id) == 34
    assert await engine.enqueue(services, broadcast_id) == 0  # the outbox is written once
    assert (await broadcast_row(services, broadcast_id)).status is BroadcastStatus.RUNNING
    summary = await engine.deliver(
        services, broadcast_id, on_progress=lambda s, total: seen.append((s.done, total))
    )

    assert (summary.sent, summary.failed, summary.unsubscribed) == (34, 0, 0)
    assert 0 < summary.per_second <= 30
    for chat_id in chats[:30] + chats[35:39]:
        assert received(emulator, chat_id) == [TEXT]
    for chat_id in chats[30:35] + chats[39:]:
        assert received(emulator, chat_id) == []
    assert emulator.stats.too_many_requests == 0
    assert seen[-1] == (34, 34)
    row = await broadcast_row(services, broadcast_id)
    assert row.status is BroadcastStatus.DONE and row.finished_at == clock.now
    assert {d.status for d in await deliveries(services, broadcast_id)} == {DeliveryStatus.SENT}

    again = await engine.deliver(services, broadcast_id)
    assert again.sent == 0 and all(received(emulator, c) == [TEXT] for c in chats[:30])


async def test_an_area_broadcast_reaches_only_that_area(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 6)
    await subscribe(services.sessions, services.keyring, chats[:3], clock.now, area="Khu phố 2")
    await subscribe(services.sessions, services.keyring, chats[3:], clock.now, area="Khu phố 3")
    broadcast_id = await add_broadcast(services, area="Khu phố 2", ward_code=None)

    summary = await engine.send(services, broadcast_id)

    assert summary.sent == 3
    assert [len(received(emulator, c)) for c in chats] == [1, 1, 1, 0, 0, 0]


async def test_a_flood_wait_pauses_every_sender_and_loses_nothing(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 20)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    broadcast_id = await add_broadcast(services)
    emulator.fail("sendMessage", error_code=429, retry_after=1)

    summary = await engine.send(services, broadcast_id)

    assert (summary.sent, summary.flood_waits) == (20, 1)
    for chat_id in chats:
        assert received(emulator, chat_id) == [TEXT]
    assert emulator.stats.duplicates == 0
    sends = emulator.calls_to("sendMessage")
    [flood] = [call for call in sends if call.status == 429]
    during = [c for c in sends if flood.time + 0.05 < c.time < flood.time + 0.95]
    assert during == []  # nobody sent while the wait lasted


async def test_a_resident_who_blocked_the_bot_is_unsubscribed_and_counted(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 5)
    stranger = 5_559_999_999  # a chat Telegram does not know: "chat not found"
    await subscribe(services.sessions, services.keyring, [*chats, stranger], clock.now)
    emulator.block_bot(emulator.world.users[chats[1]])
    emulator.block_bot(emulator.world.users[chats[3]])
    broadcast_id = await add_broadcast(services)

    summary = await engine.send(services, broadcast_id)

    assert (summary.sent, summary.failed, summary.unsubscribed) == (3, 0, 3)
    async with unit_of_work(services.sessions) as session:
        result = await session.exec(
            select(Subscription).where(col(Subscription.active).is_(False))
        )
        ended = result.all()
    assert len(ended) == 3 and {s.end_reason for s in ended} == {"blocked"}
    rows = await deliveries(services, broadcast_id)
    unsubscribed = [d for d in rows if d.status is DeliveryStatus.UNSUBSCRIBED]
    assert len(unsubscribed) == 3
    for row in unsubscribed:
        assert row.error and not re.search(r"\d{5,}", row.error)
    # The next month's broadcast does not even try them.
    assert await engine.enqueue(services, await add_broadcast(services, month="2026-12")) == 3


async def test_a_server_error_is_retried_with_backoff_then_succeeds(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 4)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    emulator.fail("sendMessage", error_code=502, times=2, chat_id=chats[2])
    sleeper = FakeSleeper(clock)
    broadcast_id = await add_broadcast(services)

    summary = await engine.send(services, broadcast_id, sleeper=sleeper)

    assert (summary.sent, summary.failed) == (4, 0)
    assert received(emulator, chats[2]) == [TEXT]
    assert [w for w in sleeper.waits if w >= 1] == [1.0, 2.0]
    [row] = [d for d in await deliveries(services, broadcast_id) if d.attempts == 3]
    assert row.status is DeliveryStatus.SENT


async def test_a_server_error_that_persists_fails_after_three_attempts(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 3)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    emulator.fail("sendMessage", error_code=500, times=10, chat_id=chats[0])
    broadcast_id = await add_broadcast(services)

    summary = await engine.send(services, broadcast_id, sleeper=FakeSleeper(clock))

    assert (summary.sent, summary.failed) == (2, 1)
    assert received(emulator, chats[0]) == []
    failed = [d for d in await deliveries(services, broadcast_id) if d.status == "failed"]
    assert [(d.attempts, bool(d.error)) for d in failed] == [(3, True)]
    assert failed[0].error is not None and str(chats[0]) not in failed[0].error
    calls = [c for c in emulator.calls_to("sendMessage") if c.params["chat_id"] == chats[0]]
    assert len(calls) == 3


async def test_quiet_hours_hold_delivery_until_morning(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    services.settings = broadcasts_settings(services.settings, quiet_hours="21:00-07:00")
    clock.now = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)  # 22:30 in Vietnam
    chats = residents(emulator, 5)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    sleeper = FakeSleeper(clock)
    broadcast_id = await add_broadcast(services)

    summary = await engine.send(services, broadcast_id, sleeper=sleeper)

    assert summary.sent == 5
    assert sleeper.waits[0] == 8.5 * 3600  # until 07:00, waited once for every sender
    morning = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert all(
        d.sent_at and d.sent_at >= morning for d in await deliveries(services, broadcast_id)
    )


@pytest.mark.parametrize(
    ("now", "quiet", "wait"),
    [
        (datetime(2026, 11, 30, 1, 0, tzinfo=UTC), "21:00-07:00", 0),  # 08:00
        (datetime(2026, 11, 29, 23, 0, tzinfo=UTC), "21:00-07:00", 3600),  # 06:00
        (datetime(2026, 11, 30, 14, 0, tzinfo=UTC), "21:00-07:00", 10 * 3600),  # 21:00
        (datetime(2026, 11, 30, 6, 0, tzinfo=UTC), "12:00-14:00", 3600),  # 13:00
        (datetime(2026, 11, 30, 7, 0, tzinfo=UTC), "12:00-14:00", 0),  # 14:00
    ],
)
def test_quiet_wait(now: datetime, quiet: str, wait: float, settings: Settings) -> None:
    section = BroadcastsSection(quiet_hours=quiet)
    assert engine.quiet_wait(now, section.quiet, settings.bot.tz) == wait


async def test_two_deliveries_at_once_never_send_a_row_twice(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    emulator.latency = 0.01
    chats = residents(emulator, 40)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    broadcast_id = await add_broadcast(services)
    await engine.enqueue(services, broadcast_id)

    first, second = await asyncio.gather(
        engine.deliver(services, broadcast_id), engine.deliver(services, broadcast_id)
    )

    assert first.sent + second.sent == 40
    assert all(received(emulator, c) == [TEXT] for c in chats)
    assert emulator.stats.duplicates == 0


async def test_long_texts_and_captions_are_split_not_rejected(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 2)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    photo = emulator.world.store_file(b"\x89PNG", "photo", size=(800, 600)).file_id
    caption = "Cây có chứa chất ma túy: " + "nhận biết cây thuốc phiện. " * 60
    long_text = "Pháp luật về phòng, chống ma túy. " * 200

    captioned = await engine.send(
        services, await add_broadcast(services, text=caption, image=photo)
    )
    long = await engine.send(
        services, await add_broadcast(services, text=long_text, month="2026-12")
    )

    assert captioned.sent == long.sent == 2
    for chat_id in chats:
        messages = emulator.bot_messages(chat_id)
        assert [m.kind for m in messages] == ["photo", "text", "text", "text"]
        assert messages[1].text == caption.strip()
        assert "".join(m.text or "" for m in messages[2:]).replace(" ", "") == long_text.replace(
            " ", ""
        )
    assert (
        engine.api_calls(engine.message_for(Broadcast(text=caption, image=photo), paid=False)) == 2
    )


async def test_paid_broadcasts_ask_telegram_for_the_paid_rate(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    services.settings = broadcasts_settings(services.settings, paid=True, rate_per_second=500)
    chats = residents(emulator, 3)
    await subscribe(services.sessions, services.keyring, chats, clock.now)

    await engine.send(services, await add_broadcast(services))

    calls = emulator.calls_to("sendMessage")
    assert [c.params.get("allow_paid_broadcast") for c in calls] == ["true"] * 3
    assert (
        engine.effective_rate(500, paid=False) == 30
        and engine.effective_rate(500, paid=True) == 500
    )


async def test_coverage_counts_who_was_reached_each_month_per_area(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 7)
    await subscribe(services.sessions, services.keyring, chats[:3], clock.now, area="Khu phố 1")
    await subscribe(services.sessions, services.keyring, chats[3:5], clock.now, area="Khu phố 2")
    emulator.block_bot(emulator.world.users[chats[4]])
    await engine.send(services, await add_broadcast(services, month="2026-11"))
    # Joined after the month's message: counted as not yet reached.
    await subscribe(services.sessions, services.keyring, chats[5:], clock.now, area="Khu phố 2")
    november = (datetime(2026, 10, 31, 17, tzinfo=UTC), datetime(2026, 11, 30, 17, tzinfo=UTC))
    december = (november[1], november[1] + timedelta(days=31))

    async with unit_of_work(services.sessions) as session:
        now = await repo.coverage(
            session=session, month_start=november[0], month_end=november[1], ward_code=WARD
        )
        later = await repo.coverage(
            session=session, month_start=december[0], month_end=december[1], ward_code=WARD
        )
        elsewhere = await repo.coverage(
            session=session, month_start=november[0], month_end=november[1], ward_code="other"
        )

    assert now == [("Khu phố 1", 3, 3), ("Khu phố 2", 3, 1)]
    assert later == [("Khu phố 1", 3, 0), ("Khu phố 2", 3, 0)]
    assert elsewhere == []


async def test_a_cancelled_broadcast_is_not_sent(
    services: Services, emulator: BotApiEmulator, clock: FakeClock
) -> None:
    chats = residents(emulator, 2)
    await subscribe(services.sessions, services.keyring, chats, clock.now)
    broadcast_id = await add_broadcast(services, status=BroadcastStatus.CANCELLED)

    with pytest.raises(engine.BroadcastCancelled):
        await engine.enqueue(services, broadcast_id)
    assert (await engine.deliver(services, broadcast_id)).sent == 0
    assert emulator.calls_to("sendMessage") == []


async def test_subscribing_again_reactivates_and_moves_the_subscription(
    services: Services, clock: FakeClock
) -> None:
    await subscribe(services.sessions, services.keyring, [1001], clock.now, area="Khu phố 1")
    chat_key = services.keyring.chat_key("telegram", "1001")
    async with unit_of_work(services.sessions) as session:
        assert await repo.unsubscribe(
            session=session, chat_key=chat_key, now=clock.now, reason="user"
        )
        assert not await repo.unsubscribe(
            session=session, chat_key=chat_key, now=clock.now, reason="user"
        )
    await subscribe(services.sessions, services.keyring, [1001], clock.now, area="Khu phố 4")
    async with unit_of_work(services.sessions) as session:
        row = await repo.get_subscription(session=session, chat_key=chat_key)
    assert row is not None and row.active and row.area == "Khu phố 4" and row.end_reason is None
