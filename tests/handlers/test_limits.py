"""Abuse limits per pseudonymous sender: tips per hour and per day, messages per minute.

Nothing a resident wrote is lost to a limit: a refused tip waits at its review, and a flood
changes the draft only by the messages let through before the limit. Officers are never
held back by residents' limits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.app import Runtime
from bot.emulator import BotApiEmulator, EmuMessage
from chat import Group, Person
from conftest import GROUP_ID, OFFICER_ID, FakeClock
from storage.db import unit_of_work
from storage.models import Draft, Throttle
from tests_support import RECEIPT, send_tip

HOTLINES = (
    "Nếu việc khẩn cấp, hãy gọi ngay:\n📞 Cảnh sát 113: 113\n📞 Công an phường: 0237 3 123 456"
)
PER_HOUR = (
    "⏳ Mỗi giờ, mỗi người gửi được tối đa 5 tin, và bạn đã gửi đủ. Tin này vẫn được giữ "
    "nguyên: từ {time}, bạn bấm «✅ Gửi tin» là gửi được.\n\n" + HOTLINES
)
PER_DAY = (
    "⏳ Mỗi ngày, mỗi người gửi được tối đa 20 tin, và bạn đã gửi đủ. Tin này vẫn được giữ "
    "nguyên: từ {time}, bạn bấm «✅ Gửi tin» là gửi được.\n\n" + HOTLINES
)
PER_HOUR_EN = (
    "⏳ Each person can send at most 5 tips an hour, and you have sent that many. This tip is "
    "kept as it is: from 09:10 23/11/2026, tap «✅ Send tip» to send it.\n\n"
    "If it is urgent, call now:\n📞 Cảnh sát 113: 113\n📞 Công an phường: 0237 3 123 456"
)
SLOW_DOWN = (
    "✋ Bạn gửi nhanh quá. Trong 60 giây tới, bot sẽ bỏ qua tin nhắn mới; những gì bạn đã "
    "viết vẫn được giữ. Hãy đợi một chút rồi gửi tiếp."
)
SLOW_DOWN_TAP = "✋ Bạn bấm nhanh quá. Hãy đợi 60 giây rồi bấm lại."
APPENDED = "📝 Đã thêm vào nội dung tin."
NOT_FOUND = "Không tìm thấy tin nào với mã này. Bạn kiểm tra lại 16 số."
LOCKED = "Bạn đã gõ sai nhiều lần. Hãy thử lại sau 1 giờ."
LAST_WORDS = "Bây giờ họ vẫn đang ở đó"


def neighbour(emulator: BotApiEmulator, runtime: Runtime, user_id: int = 5550009999) -> Person:
    """Another resident of the ward."""
    user = emulator.add_user(user_id, "Lê", language_code="vi")
    return Person(emulator, user, runtime.dispatcher.idle)


async def to_review(resident: Person, text: str = LAST_WORDS) -> EmuMessage:
    """Write a tip up to its review, without sending it."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await resident.says("Quán nước đầu ngõ 12")
    await resident.says(text)
    return await resident.taps("⏭ Bỏ qua")


async def the_draft(runtime: Runtime) -> tuple[str, dict[str, Any], int]:
    """The one draft being written: its step, its data and its version."""
    async with unit_of_work(runtime.services.sessions) as session:
        (only,) = (await session.exec(select(Draft))).all()
    return only.step, only.data, only.version


async def throttles(runtime: Runtime) -> list[Throttle]:
    """Every stored counter."""
    async with unit_of_work(runtime.services.sessions) as session:
        return list((await session.exec(select(Throttle))).all())


async def all_handled(emulator: BotApiEmulator, runtime: Runtime) -> None:
    """Return once every update sent so far has been handled.

    Updates start being handled in the order they came; once a later resident's message is
    answered, everything sent before it has started, and the dispatcher's idle covers the rest.
    """
    sentinel = neighbour(emulator, runtime, user_id=5550000001)
    assert (await sentinel.says("/start")).text.startswith("🏮 Hòm thư tố giác ma túy")


def card_numbers(officers: Group) -> list[int]:
    """The numbers of the tips whose card is in the officers' group."""
    return [
        int(m.text.split("TIN #")[1].split(" ")[0])
        for m in officers.messages()
        if "TIN #" in m.text
    ]


async def read_since(person: Person, before: int) -> list[str]:
    """Read the bot's messages to a person after the first ``before`` ones."""
    unread = person.emulator.bot_messages(person.chat_id)[before:]
    for _ in unread:
        await person.sees()
    return [message.text for message in unread]


async def test_the_sixth_tip_in_an_hour_waits_and_is_sent_later(
    resident: Person, officers: Group, runtime: Runtime, clock: FakeClock
) -> None:
    for n in range(5):
        await send_tip(resident, f"Tin số {n + 1}: có người bán ma túy")
        clock.advance(minutes=2)

    await to_review(resident)
    refused = await resident.taps("✅ Gửi tin")
    expected = PER_HOUR.format(time="09:10 23/11/2026")
    assert refused.text.startswith(expected + "\n"), refused.text
    assert "Xem lại tin" in refused.text
    assert f"📝 Nội dung: {LAST_WORDS}" in refused.text
    assert refused.button_labels()[:1] == ["✅ Gửi tin"]
    step, data, _ = await the_draft(runtime)
    assert (step, data["text"], data["area"]) == ("r", LAST_WORDS, "Khu phố 3")

    clock.advance(minutes=49)  # 09:09, a minute short of the hour
    again = await resident.taps("✅ Gửi tin")
    assert again.text.startswith(expected + "\n")

    clock.advance(minutes=1)
    assert card_numbers(officers) == [1, 2, 3, 4, 5]
    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #6" in sent.text
    assert RECEIPT.search(sent.text)
    await officers.emulator.wait_until(lambda _: len(card_numbers(officers)) == 6)
    [sixth] = [m for m in officers.messages() if m.text.startswith("🆕 TIN #6")]
    assert LAST_WORDS in sixth.text


async def test_the_refusal_is_in_english_for_an_english_speaker(
    resident: Person, officers: Group, clock: FakeClock
) -> None:
    for _ in range(5):
        await send_tip(resident)
        clock.advance(minutes=2)
    await resident.says("/start")
    await resident.taps("🌐 English")
    await resident.taps("📝 Send a tip")
    await resident.taps("💊 Drug dealing")
    await resident.taps("Khu phố 3")
    await resident.says("Quán nước đầu ngõ 12")
    await resident.says(LAST_WORDS)
    await resident.taps("⏭ Skip")
    refused = await resident.taps("✅ Send tip")
    assert refused.text.startswith(PER_HOUR_EN + "\n"), refused.text


async def test_the_twenty_first_tip_in_a_day_waits_until_the_next_morning(
    resident: Person, officers: Group, runtime: Runtime, clock: FakeClock
) -> None:
    start = clock.now
    for n in range(20):
        # Five an hour, the most the hourly limit lets through.
        clock.now = start + timedelta(hours=n // 5, minutes=2 * (n % 5))
        await send_tip(resident, f"Tin số {n + 1}: có người bán ma túy")

    clock.now = start + timedelta(hours=4)  # 12:10, a fresh hour
    await to_review(resident)
    refused = await resident.taps("✅ Gửi tin")
    assert refused.text.startswith(PER_DAY.format(time="08:10 24/11/2026") + "\n"), refused.text
    step, data, _ = await the_draft(runtime)
    assert (step, data["text"]) == ("r", LAST_WORDS)

    clock.now = start + timedelta(days=1)
    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #21" in sent.text
    assert RECEIPT.search(sent.text)


async def test_a_flood_from_one_chat_does_not_hold_up_another_residents_tip(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    await to_review(resident)
    before = await the_draft(runtime)
    clock.advance(minutes=1)
    answered = len(emulator.bot_messages(resident.chat_id))
    other = neighbour(emulator, runtime)

    # How long the neighbour waits is measured by benchmarks/flood.py, not timed here.
    for n in range(1000):
        await emulator.send_text(resident.user, f"alo alo {n}")
    await send_tip(other, "Có người lạ bán ma túy trước cổng trường")
    # Generous: the thousand messages are queued on a machine that may be busy.
    card = await officers.sees(timeout=60)

    assert card.text.startswith("🆕 TIN #1 · 💊 Mua bán ma túy")
    assert "Có người lạ bán ma túy trước cổng trường" in card.text

    await all_handled(emulator, runtime)
    answers = await read_since(resident, answered)
    assert answers[-1] == SLOW_DOWN
    assert answers.count(SLOW_DOWN) == 1
    # The messages let through before the limit were added to the tip, as typed text is at
    # its review; the rest changed nothing.
    admitted = len(answers) - 1
    assert 1 <= admitted <= 20
    assert all(text.startswith(APPENDED + "\n") for text in answers[:-1]), answers
    step, data, version = await the_draft(runtime)
    assert step == "r"
    assert data == {
        **before[1],
        "text": "\n".join([LAST_WORDS] + [f"alo alo {n}" for n in range(admitted)]),
    }
    assert version == before[2] + admitted

    # Buttons have their own budget: the flooder can still send the tip they wrote.
    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #2" in sent.text
    second = await officers.sees()
    assert LAST_WORDS in second.text

    clock.advance(minutes=1)
    assert (await resident.says("alo")).text.startswith("🏮 Hòm thư tố giác ma túy")


async def test_tapping_too_fast_is_answered_once_then_ignored_for_the_minute(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime, clock: FakeClock
) -> None:
    review = await to_review(resident)
    _, data, version = await the_draft(runtime)
    assert data["contact"] is True
    clock.advance(minutes=1)
    answered = len(emulator.bot_messages(resident.chat_id))
    # Thirty taps on «may officers ask you questions?»: each handled one switches it.
    queries = [
        await emulator.click_data(resident.user, review, "1:t:r:contact") for _ in range(30)
    ]
    await all_handled(emulator, runtime)

    answers = [a for a in emulator.callback_answers if a["callback_query_id"] in queries]
    alerts = [a for a in answers if a.get("text") == SLOW_DOWN_TAP]
    assert len(alerts) == 1 and alerts[0].get("show_alert") is True
    # The rest of the minute's taps are not even answered.
    handled = len(answers) - 1
    assert 1 <= handled <= 20
    _, after, new_version = await the_draft(runtime)
    assert new_version == version + handled
    assert after == {**data, "contact": handled % 2 == 0}
    reviews = await read_since(resident, answered)
    assert len(reviews) == handled
    assert all(text.startswith("📋 Xem lại tin trước khi gửi:\n") for text in reviews)

    clock.advance(minutes=1)
    cancelled = await resident.taps("✖️ Hủy")
    assert cancelled.text.startswith("Đã hủy. Tin chưa được gửi và đã bị xóa.")


async def test_a_flood_of_wrong_receipts_checks_five_then_locks(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await send_tip(resident)
    await officers.sees()
    await resident.taps("🔎 Tra cứu tin đã gửi")
    answered = len(emulator.bot_messages(resident.chat_id))
    for n in range(200):
        await emulator.send_text(resident.user, f"{n:016d}")
    await all_handled(emulator, runtime)

    answers = await read_since(resident, answered)
    assert answers[:5] == [NOT_FOUND] * 5
    assert all(text.startswith(LOCKED) for text in answers[5:-1])
    assert answers[-1] == SLOW_DOWN
    [lookup] = [row for row in await throttles(runtime) if row.scope == "lookup"]
    assert lookup.count == 5


async def test_counters_hold_keyed_hashes_never_the_chat_id(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await send_tip(resident)
    await resident.says("0000 0000 0000 0000")
    for n in range(30):
        await emulator.send_text(resident.user, f"alo {n}")
    await all_handled(emulator, runtime)

    chat_key = runtime.services.keyring.chat_key("telegram", str(resident.chat_id))
    rows = await throttles(runtime)
    assert sorted((row.scope, row.count) for row in rows) == [
        ("lookup", 1),
        ("tips-day", 1),
        ("tips-hour", 1),
    ]
    assert {row.chat_key for row in rows} == {chat_key}
    sentinel = runtime.services.keyring.chat_key("telegram", "5550000001")
    assert runtime.limiter.keys() == {chat_key, sentinel}
    for row in rows:
        assert str(resident.chat_id) not in repr(row)


async def test_officers_are_never_held_back_by_residents_limits(
    officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    officer = emulator.add_user(OFFICER_ID, "Nguyễn Văn", "Cán")
    for _ in range(30):
        await emulator.send_command(officer, "/queue", chat=GROUP_ID)
    for _ in range(30):
        await emulator.send_command(officer, "/queue")
    await all_handled(emulator, runtime)

    empty = "📋 Phường Đông Cương: không có tin nào đang mở."
    assert [m.text for m in officers.messages()] == [empty] * 30
    assert [m.text for m in emulator.bot_messages(OFFICER_ID)] == [empty] * 30
