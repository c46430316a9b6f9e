"""The month's message reaches subscribers once: at start when it was missed, never twice."""

from __future__ import annotations

from sqlmodel import select

from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator
from chat import Person
from conftest import SECRET, TOKEN, FakeClock
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus


async def start_with_jobs(settings: Settings, clock: FakeClock) -> Runtime:
    """The bot as `run` starts it: scheduler on, and the start-up catch-up."""
    bot = Runtime(settings, await open_services(settings, secret=SECRET, clock=clock), token=TOKEN)
    await bot.start(jobs=True)
    return bot


async def test_a_month_missed_while_down_is_sent_once_at_start(
    resident: Person,
    emulator: BotApiEmulator,
    runtime: Runtime,
    settings: Settings,
    clock: FakeClock,
) -> None:
    await resident.says("/dangky")
    await resident.taps("Khu phố 1")
    await runtime.stop()  # the bot is down on the 1st at 08:00; the clock says the 23rd

    bot = await start_with_jobs(settings, clock)
    try:
        message = await emulator.next_bot_message(resident.chat_id, timeout=10)
        assert "ma túy" in (message.text or "")
        assert "Cảnh sát 113: 113" in message.text  # the ward's hotlines are appended
        await emulator.wait_until(lambda _: not bot._tasks, timeout=10)
    finally:
        await bot.stop()

    again = await start_with_jobs(settings, clock)
    try:
        await emulator.wait_until(lambda _: not again._tasks, timeout=10)
    finally:
        await again.stop()
    async with unit_of_work(runtime.services.sessions) as session:
        [broadcast] = (await session.exec(select(Broadcast))).all()
    assert (broadcast.month, broadcast.status) == ("2026-11", BroadcastStatus.DONE)
    texts = [m.text for m in emulator.bot_messages(resident.chat_id)]
    assert texts.count(broadcast.text) == 1
