"""Officers ask the bot about their queue, one tip's record and the month, in group or private."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from chat import Group, Officer, Person
from conftest import GROUP_ID, OFFICER_ID, FakeClock
from storage import queue as queue_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Category, TipBase, TipStatus

STRANGER_ID = 700099


@pytest.fixture
def officer(emulator: BotApiEmulator, officers: Group) -> Officer:
    """A ward officer in the group."""
    user = emulator.add_user(user_id=OFFICER_ID, first_name="Nguyễn Văn", last_name="Cán")
    return Officer(emulator, user, officers)


@pytest.fixture
def officer_chat(officer: Officer, runtime: Runtime) -> Person:
    """The same officer, in a private chat with the bot."""
    return Person(officer.emulator, officer.user, runtime.dispatcher.idle)


async def add_tip(
    runtime: Runtime,
    at: datetime,
    *,
    priority: str = "normal",
    category: Category = Category.DEALING,
    area: str | None = "Khu phố 3",
    ward_code: str = "dong-cuong",
    status: TipStatus = TipStatus.NEW,
) -> int:
    """Store a tip as if it came in and its card was posted at ``at``."""
    async with unit_of_work(runtime.services.sessions) as session:
        tip = await repo.create_tip(
            session=session,
            tip_in=TipBase(ward_code=ward_code, category=category, area=area, text="Có người bán"),
            receipt_hash=secrets.token_hex(32),
            attachments=[],
            contact_sealer=None,
            now=at,
        )
        assert tip.id is not None
        await queue_repo.set_triage(session=session, tip_id=tip.id, priority=priority, flags=[])
        # A posted card keeps the repost job from posting these rows while the test runs.
        await repo.mark_card_posted(session=session, tip_id=tip.id, message_id="1", now=at)
        if status is not TipStatus.NEW:
            await queue_repo.set_status(
                session=session, tip_id=tip.id, status=status, closed=False, now=at, last_action=""
            )
        return tip.id


async def claim(runtime: Runtime, tip_id: int, at: datetime) -> None:
    async with unit_of_work(runtime.services.sessions) as session:
        await queue_repo.claim(
            session=session,
            tip_id=tip_id,
            officer_id=OFFICER_ID,
            officer_name="Nguyễn Văn Cán",
            now=at,
            last_action="",
        )


async def command(officer: Officer, text: str) -> None:
    name, _, args = text.partition(" ")
    await officer.emulator.send_command(officer.user, name, args=args, chat=GROUP_ID)


async def walk_tip(resident: Person, category: str, text: str) -> None:
    """The resident sends a tip about Khu phố 3 by tapping, allowing questions."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps(category)
    await resident.taps("Khu phố 3")
    await resident.taps("⏭ Bỏ qua")
    await resident.says(text)
    await resident.taps("⏭ Bỏ qua")
    await resident.taps("✅ Gửi tin")


async def test_the_queue_lists_urgent_first_then_oldest_and_pages_by_ten(
    officers: Group, officer: Officer, runtime: Runtime, clock: FakeClock
) -> None:
    start = clock.now - timedelta(hours=12)
    for n in range(10):
        await add_tip(runtime, start + timedelta(minutes=n), priority=("normal", "low")[n % 2])
    high = await add_tip(runtime, start + timedelta(hours=2), priority="high")
    urgent = await add_tip(runtime, start + timedelta(hours=11), priority="urgent")
    await add_tip(runtime, start, status=TipStatus.RESOLVED)  # closed: never listed
    await add_tip(runtime, start, ward_code="quang-trung")  # another ward's

    await command(officer, "/queue")
    page = await officers.sees()
    lines = page.text.splitlines()
    assert lines[0] == "📋 Tin đang mở · Phường Đông Cương: 12 tin · trang 1/2"
    assert lines[2] == (
        f"🔴 #{urgent} · 💊 Mua bán ma túy · Khu phố 3 · 1 giờ trước · 👮 chưa ai nhận"
    )
    assert lines[3].startswith(f"🟠 #{high} · ")
    assert [line.split(" · ")[0] for line in lines[4:]] == [
        "🟢 #1",
        "🟢 #3",
        "🟢 #5",
        "🟢 #7",
        "🟢 #9",
        "⚪ #2",
        "⚪ #4",
        "⚪ #6",
    ]
    assert page.button_labels() == ["Trang sau ▶️"]

    await officer.taps(page, "Trang sau ▶️")
    await officer.emulator.wait_until(lambda _: page.edits == 1)
    assert page.text.splitlines()[0].endswith("trang 2/2")
    assert [line.split(" · ")[0] for line in page.text.splitlines()[2:]] == ["⚪ #8", "⚪ #10"]
    assert page.button_labels() == ["◀️ Trang trước"]

    await officer.taps(page, "◀️ Trang trước")
    await officer.emulator.wait_until(lambda _: page.edits == 2)
    assert page.text.splitlines()[0].endswith("trang 1/2")
    # A button from a longer list than there is now shows the last page there is.
    await officer.emulator.click_data(officer.user, page, "1:o:dong-cuong:9")
    await officer.emulator.wait_until(lambda _: page.edits == 3)
    assert page.text.splitlines()[0].endswith("trang 2/2")
    assert len(officers.messages()) == 1


async def test_an_empty_queue_says_so(officers: Group, officer: Officer) -> None:
    await command(officer, "/queue")
    assert (await officers.sees()).text == "📋 Phường Đông Cương: không có tin nào đang mở."


async def test_someone_not_an_officer_is_refused_in_the_group(
    officers: Group, officer: Officer, emulator: BotApiEmulator, runtime: Runtime, clock: FakeClock
) -> None:
    await add_tip(runtime, clock.now)
    stranger = Officer(emulator, emulator.add_user(STRANGER_ID, "Người lạ"), officers)
    for text in ("/queue", "/tip 1", "/stats"):
        asked = await emulator.send_command(stranger.user, text.split()[0], chat=GROUP_ID)
        refused = await officers.sees()
        assert refused.text == (
            "Chỉ cán bộ, lãnh đạo Công an phường, xã của nhóm này mới dùng được lệnh này."
        )
        assert refused.reply_to == asked.message_id
    await command(officer, "/queue")
    page = await officers.sees()
    query = await emulator.click_data(stranger.user, page, "1:o:dong-cuong:0")
    await emulator.wait_until(
        lambda emu: any(a["callback_query_id"] == query for a in emu.callback_answers)
    )
    [answer] = [a for a in emulator.callback_answers if a["callback_query_id"] == query]
    assert answer["text"].startswith("Chỉ cán bộ, lãnh đạo Công an phường, xã")
    assert answer["show_alert"] and page.edits == 0


async def test_an_officer_uses_the_commands_in_private_a_resident_gets_the_menu(
    officer_chat: Person, resident: Person, runtime: Runtime, clock: FakeClock
) -> None:
    first = await add_tip(runtime, clock.now - timedelta(minutes=30), priority="high")
    other = await add_tip(runtime, clock.now, ward_code="quang-trung")

    listed = await officer_chat.says("/queue")
    assert listed.text.splitlines()[0] == "📋 Tin đang mở · Phường Đông Cương: 1 tin · trang 1/1"
    assert f"🟠 #{first} · 💊 Mua bán ma túy · Khu phố 3 · 30 phút trước" in listed.text
    shown = await officer_chat.says(f"/tip {first}")
    assert shown.text.startswith(f"🆕 TIN #{first} · 💊 Mua bán ma túy\n🟠 Cao\n")
    missing = await officer_chat.says(f"/tip {other}")
    assert missing.text == f"Không tìm thấy tin #{other} trong phường, xã của bạn."
    stats = await officer_chat.says("/stats")
    assert stats.text.startswith("📊 Thống kê tháng 11/2026 · Phường Đông Cương")

    for text in ("/queue", "/stats"):
        refused = await resident.says(text)
        assert refused.text.startswith("Bot không hiểu lệnh này."), text
    # For a resident, /tip (with anything after it) is the command that starts a tip.
    started = await resident.says(f"/tip {first}")
    assert started.text.endswith("Bước 1/5\nBạn muốn báo về việc gì?")


async def test_a_bare_tip_command_in_private_still_starts_a_tip(officer_chat: Person) -> None:
    started = await officer_chat.says("/tip")
    assert started.text.endswith("Bước 1/5\nBạn muốn báo về việc gì?")


async def test_a_tip_shows_its_history_and_the_anonymous_conversation(
    resident: Person, officers: Group, officer: Officer, clock: FakeClock
) -> None:
    await walk_tip(resident, "⚠️ Ngáo đá, loạn thần (nguy hiểm)", "Thằng con nhà bên ngáo đá")
    card = await officers.sees()
    clock.advance(minutes=5)
    await officer.taps_and_reads(card, "✋ Nhận xử lý")
    await resident.sees()  # told the tip was taken up
    clock.advance(minutes=5)
    await officer.taps_and_reads(card, "📝 Ghi chú")
    prompt = await officers.sees()
    await officer.replies(prompt, "Đã cử tổ tuần tra qua lúc 21h")
    await officers.sees()
    clock.advance(minutes=5)
    await officer.replies(card, "Nó có cầm hung khí không?")
    await resident.sees()
    await officers.sees()
    clock.advance(minutes=5)
    await resident.taps("✍️ Trả lời")
    await resident.says("Có, một con dao")
    await officers.sees()

    await command(officer, "/tip 1")
    record = (await officers.sees()).text
    assert record.startswith("👮 TIN #1 · ⚠️ Ngáo đá, loạn thần (nguy hiểm)\n🔴 Khẩn\n")
    assert '⚑ nguy hiểm ngay: từ khóa "ngáo đá"' in record
    assert "🕐 Nhận lúc: 08:10 23/11/2026 (20 phút trước)" in record
    assert "📌 Cán bộ đã tiếp nhận · 👮 Nguyễn Văn Cán" in record
    assert "📝 Nội dung:\nThằng con nhà bên ngáo đá" in record
    history = record.split("📜 Lịch sử xử lý:\n")[1].split("\n\n")[0]
    assert history.splitlines() == [
        "• 08:15 23/11/2026 · Nguyễn Văn Cán: nhận xử lý"
        " (Mới nhận, đang chờ cán bộ xem → Cán bộ đã tiếp nhận)",
        "• 08:20 23/11/2026 · Nguyễn Văn Cán: ghi chú",
        "   «Đã cử tổ tuần tra qua lúc 21h»",
        "• 08:25 23/11/2026 · Nguyễn Văn Cán: hỏi người báo tin",
        "   «Nó có cầm hung khí không?»",
        "• 08:30 23/11/2026 · Người báo tin: trả lời câu hỏi",
    ]
    conversation = record.split("💬 Trao đổi ẩn danh với người báo tin:\n")[1]
    assert conversation.splitlines() == [
        "• 08:25 23/11/2026 · ❓ Nguyễn Văn Cán hỏi:",
        "   Nó có cầm hung khí không?",
        "• 08:30 23/11/2026 · 💬 Người báo tin trả lời:",
        "   Có, một con dao",
    ]
    assert str(resident.user.id) not in record and "Trần Văn" not in record


async def test_an_unknown_number_and_a_bad_one_are_answered(
    officers: Group, officer: Officer, runtime: Runtime, clock: FakeClock
) -> None:
    other = await add_tip(runtime, clock.now, ward_code="quang-trung")
    await command(officer, f"/tip {other}")
    assert (await officers.sees()).text == f"Không tìm thấy tin #{other} trong phường, xã của bạn."
    await command(officer, "/tip 99")
    assert (await officers.sees()).text == "Không tìm thấy tin #99 trong phường, xã của bạn."
    await command(officer, "/tip mười")
    assert (await officers.sees()).text == "Gõ /tip và số tin, ví dụ: /tip 12"


async def test_a_long_tip_is_shown_in_pieces(
    resident: Person, officers: Group, officer: Officer
) -> None:
    words = "Nhà số 12 có người lạ ra vào suốt đêm, mua bán gì đó rất đáng ngờ. " * 100
    await walk_tip(resident, "💊 Mua bán ma túy", words.strip())
    await officers.sees()
    await officers.sees()  # the card's continuation
    await command(officer, "/tip 1")
    first, second = await officers.sees(), await officers.sees()
    assert len(first.text) <= 4096 and first.text.startswith("🆕 TIN #1")
    assert "📜 Lịch sử xử lý:\nChưa có thao tác nào." in second.text
    assert second.text.endswith("💬 Trao đổi ẩn danh với người báo tin:\nChưa có trao đổi nào.")


async def test_the_month_is_counted_by_status_category_and_area_with_the_median_wait(
    officers: Group, officer: Officer, runtime: Runtime, clock: FakeClock
) -> None:
    # 01:00 on 1 November in Vietnam is still 31 October in UTC: it counts as November.
    november = datetime(2026, 10, 31, 18, 0, tzinfo=UTC)
    october = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 23:00 on 31 October in Vietnam
    waits = (10, 20, 90)
    for minutes in waits:
        tip = await add_tip(runtime, november, area="Khu phố 1")
        await claim(runtime, tip, november + timedelta(minutes=minutes))
    await add_tip(runtime, november, category=Category.USE, area=None, status=TipStatus.SPAM)
    await add_tip(runtime, november, category=Category.PSYCHOSIS, priority="urgent")
    late = await add_tip(runtime, october, category=Category.PLANTS)
    # An October tip claimed at the first minute of November: its 60 minutes count.
    await claim(runtime, late, october + timedelta(hours=1))

    await command(officer, "/stats")
    assert (await officers.sees()).text == "\n".join(
        [
            "📊 Thống kê tháng 11/2026 · Phường Đông Cương",
            "📥 Tin nhận trong tháng: 5",
            "",
            "Theo trạng thái:",
            "• Mới nhận, đang chờ cán bộ xem: 1",
            "• Cán bộ đã tiếp nhận: 3",
            "• Không được xử lý: 1",
            "",
            "Theo loại việc:",
            "• 💊 Mua bán ma túy: 3",
            "• ⚠️ Ngáo đá, loạn thần (nguy hiểm): 1",
            "• 💉 Sử dụng ma túy: 1",
            "",
            "Theo khu vực:",
            "• Khu phố 1: 3",
            "• Khu phố 3: 1",
            "• Không rõ: 1",
            "",
            "⏱ Thời gian từ lúc nhận tin đến lúc có cán bộ nhận xử lý (trung vị): 40 phút,"
            " tính trên 4 tin được nhận trong tháng",
            "",
            "📬 Tin tuyên truyền tháng này (người đăng ký đã nhận):",
            "Chưa có ai đăng ký nhận tin.",
        ]
    )


async def test_a_month_without_tips_says_so(officers: Group, officer: Officer) -> None:
    await command(officer, "/stats")
    assert (await officers.sees()).text == (
        "📊 Thống kê tháng 11/2026 · Phường Đông Cương\n📥 Tin nhận trong tháng: 0\n\n"
        "⏱ Chưa có tin nào được nhận xử lý trong tháng.\n\n"
        "📬 Tin tuyên truyền tháng này (người đăng ký đã nhận):\n"
        "Chưa có ai đăng ký nhận tin."
    )


async def test_numbers_too_long_for_the_database_are_answered_not_errors(
    officers: Group,
    officer: Officer,
    runtime: Runtime,
    clock: FakeClock,
    logs: pytest.LogCaptureFixture,
) -> None:
    await add_tip(runtime, clock.now)
    await command(officer, "/tip 99999999999999999999")
    assert (await officers.sees()).text == "Gõ /tip và số tin, ví dụ: /tip 12"
    await command(officer, "/tip ²")
    assert (await officers.sees()).text == "Gõ /tip và số tin, ví dụ: /tip 12"
    await command(officer, "/queue")
    page = await officers.sees()
    # A forged page number past any database offset shows the last page there is.
    await officer.emulator.click_data(officer.user, page, "1:o:dong-cuong:999999999999999999")
    await officer.emulator.wait_until(lambda emu: bool(emu.calls_to("editMessageText")))
    await runtime.dispatcher.idle()
    [edit] = officer.emulator.calls_to("editMessageText")
    assert edit.params["text"].startswith("📋 Tin đang mở · Phường Đông Cương: 1 tin · trang 1/1")
    assert [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR] == []
