"""Supervisors' own broadcasts: compose, preview, send now or later, list and cancel."""

from __future__ import annotations

import json
import logging

import pytest

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from broadcasts import compose
from chat import Person
from conftest import SUPERVISOR_ID, FakeClock
from storage import broadcasts as store
from storage.db import unit_of_work
from storage.models import BroadcastStatus

TEXT = "Cuối tuần này có buổi nói chuyện về tác hại của ma túy tại nhà văn hóa khu phố 1."


async def subscribe(runtime: Runtime, chat_ids: list[int], area: str = "Khu phố 1") -> None:
    """Subscribe these chats the way the resident flow stores them."""
    keyring, now = runtime.services.keyring, runtime.services.clock()
    async with unit_of_work(runtime.services.sessions) as session:
        for chat_id in chat_ids:
            chat_key = keyring.chat_key("telegram", str(chat_id))
            address = json.dumps({"channel": "telegram", "chat": str(chat_id)}).encode()
            await store.subscribe(
                session=session,
                chat_key=chat_key,
                sealed_chat=keyring.seal(address, context=f"subscription:{chat_key}"),
                ward_code="dong-cuong",
                area=area,
                language="vi",
                now=now,
            )


def supervisor_of(emulator: BotApiEmulator, runtime: Runtime) -> Person:
    """The ward's supervisor, in a private chat with the bot."""
    user = emulator.add_user(SUPERVISOR_ID, "Lê Lãnh Đạo", language_code="vi")
    return Person(emulator, user, runtime.dispatcher.idle)


async def compose_to_area(supervisor: Person) -> str:
    """Write the text and pick Khu phố 1, up to the question of when; return the preview."""
    asked = await supervisor.says("/broadcast")
    assert "Gửi nội dung tin" in asked.text
    audience = await supervisor.says(TEXT)
    assert "Gửi tới ai?" in audience.text
    areas = await supervisor.taps("🏘 Một khu phố, thôn của Phường Đông Cương")
    assert "Khu phố 1" in areas.button_labels()
    intro = await supervisor.taps("Khu phố 1")
    assert "gửi tới: Phường Đông Cương · Khu phố 1" in intro.text
    preview = await supervisor.sees()
    assert "Gửi khi nào?" in (await supervisor.sees()).text
    return preview.text or ""


async def test_a_supervisor_previews_and_sends_now_with_progress(
    emulator: BotApiEmulator, runtime: Runtime
) -> None:
    residents = [emulator.add_user(900001 + n, f"Dân {n}") for n in range(2)]
    await subscribe(runtime, [r.id for r in residents])
    await subscribe(runtime, [900099], area="Khu phố 2")
    supervisor = supervisor_of(emulator, runtime)
    preview = await compose_to_area(supervisor)
    assert preview.startswith(TEXT)
    assert "📞 Đường dây nóng · Phường Đông Cương:" in preview
    assert "0237 3 123 456" in preview and "113" in preview
    confirm = await supervisor.taps("🚀 Gửi ngay")
    assert "Gửi ngay tới Phường Đông Cương · Khu phố 1?" in confirm.text
    started = await supervisor.taps("✅ Xác nhận")
    assert "Bắt đầu gửi tin #1" in started.text
    progress = await supervisor.sees()
    for resident in residents:
        [received] = emulator.bot_messages(resident.id)
        assert received.text == preview
    assert emulator.bot_messages(900099) == []
    assert "Đã gửi 2/2 · 100% · lỗi 0" in (progress.text or "")
    summary = (progress.text or "").splitlines()[-1]
    assert summary.startswith("✅ Xong: 2 đã nhận, 0 lỗi, 0 đã hủy nhận tin, trong ")
    async with unit_of_work(runtime.services.sessions) as session:
        broadcast = await store.get_broadcast(session=session, broadcast_id=1)
    assert broadcast is not None
    assert broadcast.status is BroadcastStatus.DONE
    assert (broadcast.created_by, broadcast.area) == (SUPERVISOR_ID, "Khu phố 1")
    assert broadcast.progress_message_id == str(progress.message_id)


async def test_a_resident_cannot_broadcast(resident: Person) -> None:
    answer = await resident.says("/broadcast")
    assert "Bot không hiểu lệnh này" in answer.text


async def test_scheduling_refuses_the_past_then_lists_and_cancels(
    emulator: BotApiEmulator, runtime: Runtime, clock: FakeClock
) -> None:
    supervisor = supervisor_of(emulator, runtime)
    await compose_to_area(supervisor)
    asked = await supervisor.taps("🗓 Hẹn giờ")
    assert "08:00 15/12" in asked.text
    assert "Thời điểm này đã qua" in (await supervisor.says("07:00 23/11")).text
    assert "không đọc được" in (await supervisor.says("sáng mai")).text
    confirm = await supervisor.says("15/12/2026 08:00")
    assert "lúc 08:00 15/12/2026" in confirm.text
    done = await supervisor.taps("✅ Xác nhận")
    assert "Đã hẹn gửi tin #1 lúc 08:00 15/12/2026" in done.text
    assert await compose.start_due(runtime.services) == 0
    listed = await supervisor.says("/broadcasts")
    assert "#1 · 🗓 Đã hẹn giờ · 08:00 15/12/2026" in listed.text
    assert "✅ 0 đã gửi · ❌ 0 lỗi · 🔕 0 hủy nhận" in listed.text
    cancelled = await supervisor.taps("✖️ Hủy #1")
    assert "Đã hủy tin #1" in cancelled.text
    clock.advance(days=30)
    assert await compose.start_due(runtime.services) == 0
    listed = await supervisor.says("/broadcasts")
    assert "#1 · ✖️ Đã hủy" in listed.text
    assert listed.button_labels() == []


async def test_a_scheduled_broadcast_starts_when_due(
    emulator: BotApiEmulator, runtime: Runtime, clock: FakeClock
) -> None:
    supervisor = supervisor_of(emulator, runtime)
    await compose_to_area(supervisor)
    await supervisor.taps("🗓 Hẹn giờ")
    await supervisor.says("09:00 23/11")
    await supervisor.taps("✅ Xác nhận")
    clock.advance(hours=1)
    assert await compose.start_due(runtime.services) == 1
    async with unit_of_work(runtime.services.sessions) as session:
        assert await store.running_broadcasts(session=session) == [1]


async def test_a_text_over_the_limit_is_refused_and_a_shorter_one_taken(
    emulator: BotApiEmulator, runtime: Runtime
) -> None:
    supervisor = supervisor_of(emulator, runtime)
    await supervisor.says("/broadcast")
    refused = await supervisor.says("Tuyên truyền. " * 300)
    assert refused.text.startswith("Tin dài quá (3.000 ký tự là tối đa;")
    assert refused.button_labels() == ["✖️ Thôi"]
    audience = await supervisor.says(TEXT)
    assert "Gửi tới ai?" in audience.text


@pytest.mark.parametrize(
    "forged",
    [
        "1:bc:r:{id}:dong-cuong:²",
        "1:bc:r:{id}:dong-cuong:99999999999999999999",
        "1:bc:g:{id}:²",
        "1:bc:g:{id}:999999999999999999",
        "1:bc:w:99999999999999999999:dong-cuong",
        "1:bc:x:99999999999999999999",
    ],
)
async def test_forged_numbers_in_broadcast_buttons_are_stale_not_errors(
    emulator: BotApiEmulator, runtime: Runtime, logs: pytest.LogCaptureFixture, forged: str
) -> None:
    supervisor = supervisor_of(emulator, runtime)
    await supervisor.says("/broadcast")
    audience = await supervisor.says(TEXT)
    await emulator.click_data(supervisor.user, audience, forged.format(id=1))
    answer = await supervisor.sees()
    assert answer.text in (
        "Tin này không còn soạn được nữa. Gõ /broadcast để soạn tin mới.",
        "Tin này không còn hủy được (đã xong hoặc đã hủy).",
    )
    assert [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR] == []
    async with unit_of_work(runtime.services.sessions) as session:
        broadcast = await store.get_broadcast(session=session, broadcast_id=1)
    assert broadcast is not None and broadcast.status is BroadcastStatus.DRAFT
