"""Officers triage tips in their group: the cards, the buttons, the anonymous conversation."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot.app import Runtime
from bot.emulator import BotApiEmulator, EmuMessage
from chat import Group, Officer, Person
from conftest import OFFICER_ID, SUPERVISOR_ID
from storage import queue as queue_repo
from storage.db import unit_of_work
from storage.models import Tip, TipEvent, TipStatus

STRANGER_ID = 700099


async def walk_tip(
    resident: Person,
    category: str = "💊 Mua bán ma túy",
    text: str = "Tối nào cũng có người bán hàng ở quán nước",
    *,
    contact: bool = True,
) -> None:
    """The resident sends a tip by tapping; optionally refusing follow-up questions."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps(category)
    await resident.taps("Khu phố 3")
    await resident.taps("⏭ Bỏ qua")
    await resident.says(text)
    await resident.taps("⏭ Bỏ qua")
    if not contact:
        await resident.taps("🔔 Cho cán bộ hỏi thêm: Có")
    await resident.taps("✅ Gửi tin")


@pytest.fixture
def officer(emulator: BotApiEmulator, officers: Group) -> Officer:
    """A ward officer, with a name and username that must never reach a resident."""
    user = emulator.add_user(
        user_id=OFFICER_ID, first_name="Nguyễn Văn", last_name="Cán", username="can_ca_phuong"
    )
    return Officer(emulator, user, officers)


@pytest.fixture
def supervisor(emulator: BotApiEmulator, officers: Group) -> Officer:
    """The unit leader, who may assign tips."""
    user = emulator.add_user(user_id=SUPERVISOR_ID, first_name="Trưởng Công an", last_name="Lê")
    return Officer(emulator, user, officers)


async def tip_row(runtime: Runtime, tip_id: int = 1) -> Tip:
    async with unit_of_work(runtime.services.sessions) as session:
        tip = await session.get(Tip, tip_id)
    assert tip is not None
    return tip


async def edited(emulator: BotApiEmulator, card: EmuMessage, edits: int) -> None:
    """Wait until the card has been edited at least ``edits`` times."""
    await emulator.wait_until(lambda _: card.edits >= edits)


async def test_an_urgent_tip_rings_and_is_pinned_a_normal_one_stays_quiet(
    resident: Person, officers: Group
) -> None:
    await walk_tip(
        resident, "⚠️ Ngáo đá, loạn thần (nguy hiểm)", "Thằng con nhà bên ngao da cam dao"
    )
    urgent = await officers.sees()
    assert urgent.text.startswith("🆕 TIN #1 · ⚠️ Ngáo đá, loạn thần (nguy hiểm)")
    assert "🔴 Khẩn · ⚑ nguy hiểm ngay" in urgent.text
    assert not urgent.silent
    await resident.emulator.wait_until(lambda _: urgent.pinned)
    assert urgent.button_labels() == [
        "✋ Nhận xử lý",
        "👥 Giao cho…",
        "📌 Trạng thái",
        "❓ Hỏi người báo tin",
        "📝 Ghi chú",
        "🚫 Chặn người gửi",
    ]

    await walk_tip(
        resident, "🍬 Ma túy núp bóng, thuốc lá điện tử", "Cửa hàng bán thuốc lá điện tử"
    )
    normal = await officers.sees()
    assert "🟢 Thường" in normal.text
    assert normal.silent and not normal.pinned


async def test_a_tip_is_stored_in_one_insert_with_its_priority_flags_and_sender(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(" ".join(statement.split()))

    engine = runtime.services.sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        await walk_tip(
            resident, "⚠️ Ngáo đá, loạn thần (nguy hiểm)", "Thằng con nhà bên ngao da cam dao"
        )
        await officers.sees()
    finally:
        event.remove(engine, "before_cursor_execute", record)

    inserts = [s for s in statements if s.startswith("INSERT INTO tips ")]
    assert len(inserts) == 1
    assert all(column in inserts[0] for column in ("priority", "flags", "sender_tag"))
    later = [s for s in statements if s.startswith("UPDATE tips SET")]
    assert not [s for s in later if any(c in s for c in ("priority", "flags", "sender_tag"))]
    tip = await tip_row(runtime)
    assert tip.priority == "urgent"
    assert tip.flags and all(flag["code"] and flag["rule"] for flag in tip.flags)
    sender = runtime.services.keyring.digest("sender", f"telegram:{resident.chat_id}")
    assert tip.sender_tag == sender


async def test_a_suspected_spam_tip_still_arrives_quietly_and_marked(
    resident: Person, officers: Group
) -> None:
    await walk_tip(resident, "📄 Tội phạm khác", "http://example.com")
    card = await officers.sees()
    assert "⚪ Thấp · ⚑ nghi spam" in card.text
    assert card.silent


async def test_an_officer_claims_and_everyone_sees_it(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime
) -> None:
    await walk_tip(resident, "⚠️ Ngáo đá, loạn thần (nguy hiểm)", "ngáo đá đập phá")
    card = await officers.sees()
    await resident.emulator.wait_until(lambda _: card.pinned)
    notice, alert = await officer.taps_and_reads(card, "✋ Nhận xử lý")
    assert (notice, alert) == ("Bạn đã nhận xử lý tin #1.", False)
    await edited(resident.emulator, card, 1)
    assert "📌 Cán bộ đã tiếp nhận · 👮 Nguyễn Văn Cán" in card.text
    assert "🕑 Gần nhất: Nguyễn Văn Cán nhận xử lý" in card.text
    assert "✋ Nhận xử lý" not in card.button_labels()
    await resident.emulator.wait_until(lambda _: not card.pinned)
    told = await resident.sees()
    assert told.text == "🔔 Tin #1: cán bộ đã tiếp nhận tin của bạn. Cảm ơn bạn!"
    tip = await tip_row(runtime)
    assert (tip.status, tip.assignee_id, tip.card_version) == (
        TipStatus.ACKNOWLEDGED,
        OFFICER_ID,
        2,
    )


async def test_someone_not_an_officer_is_refused_and_nothing_changes(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    stranger = Officer(emulator, emulator.add_user(STRANGER_ID, "Người lạ"), officers)
    await walk_tip(resident)
    card = await officers.sees()
    notice, alert = await stranger.taps_and_reads(card, "✋ Nhận xử lý")
    assert alert and notice == "Bạn không có quyền thao tác trên tin này."
    assert card.edits == 0
    tip = await tip_row(runtime)
    assert tip.assignee_id is None and tip.status is TipStatus.NEW


async def test_the_second_claim_is_told_who_has_the_tip(
    resident: Person, officers: Group, officer: Officer, supervisor: Officer
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.taps_and_reads(card, "✋ Nhận xử lý")
    # The supervisor pressed the same card before it was edited: an outdated button.
    query = await resident.emulator.click_data(supervisor.user, card, "1:q:1:1:claim")
    await resident.emulator.wait_until(
        lambda emu: any(a["callback_query_id"] == query for a in emu.callback_answers)
    )
    [answer] = [a for a in resident.emulator.callback_answers if a["callback_query_id"] == query]
    assert answer["text"] == "Tin này đã do Nguyễn Văn Cán nhận xử lý."
    assert answer["show_alert"]


async def test_of_two_claims_at_the_same_moment_exactly_one_wins(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    await walk_tip(resident)
    await officers.sees()
    sessions = runtime.services.sessions
    now = runtime.services.clock()

    async def claim(officer_id: int) -> bool:
        async with unit_of_work(sessions) as session:
            return await queue_repo.claim(
                session=session,
                tip_id=1,
                officer_id=officer_id,
                officer_name=str(officer_id),
                now=now,
                last_action="claim",
            )

    results = await asyncio.gather(*(claim(700000 + n) for n in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    tip = await tip_row(runtime)
    assert tip.assignee_id == 700000 + results.index(True)


async def test_a_status_change_edits_the_card_and_tells_the_resident(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.taps_and_reads(card, "📌 Trạng thái")
    await edited(resident.emulator, card, 1)
    assert "Đã xử lý" in card.button_labels() and "◀️ Quay lại" in card.button_labels()
    notice, _ = await officer.taps_and_reads(card, "Đã xử lý")
    assert notice == "Trạng thái: Đã xử lý."
    await edited(resident.emulator, card, 2)
    assert card.text.startswith("✅ TIN #1")
    assert "✋ Nhận xử lý" in card.button_labels()  # the main buttons are back
    told = await resident.sees()
    assert told.text == "✅ Tin #1 đã được xử lý. Cảm ơn bạn đã góp sức!"
    tip = await tip_row(runtime)
    assert tip.status is TipStatus.RESOLVED and tip.closed_at is not None
    async with unit_of_work(runtime.services.sessions) as session:
        [event] = (await session.exec(select(TipEvent))).all()
    assert (event.action, event.before, event.after, event.actor_id) == (
        "status",
        "new",
        "resolved",
        OFFICER_ID,
    )


async def test_a_button_from_an_old_card_refreshes_it_instead_of_acting(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.taps_and_reads(card, "✋ Nhận xử lý")
    await edited(resident.emulator, card, 1)
    query = await resident.emulator.click_data(officer.user, card, "1:q:1:1:st:spam")
    await resident.emulator.wait_until(
        lambda emu: any(a["callback_query_id"] == query for a in emu.callback_answers)
    )
    [answer] = [a for a in resident.emulator.callback_answers if a["callback_query_id"] == query]
    assert answer["text"].startswith("Thẻ tin đã thay đổi, vừa được cập nhật lại.")
    assert answer["show_alert"]
    assert (await tip_row(runtime)).status is TipStatus.ACKNOWLEDGED


async def test_the_officer_asks_and_the_resident_answers_both_anonymously(
    resident: Person, officers: Group, officer: Officer, emulator: BotApiEmulator
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.taps_and_reads(card, "❓ Hỏi người báo tin")
    prompt = await officers.sees()
    assert prompt.text.startswith("❓ Tin #1: viết câu hỏi cho người báo tin")
    assert prompt.reply_to == card.message_id
    await officer.replies(prompt, "Họ thường bán vào mấy giờ?")

    question = await resident.sees()
    assert question.text.startswith("💬 Cán bộ tiếp nhận hỏi về tin #1 của bạn:")
    assert "Họ thường bán vào mấy giờ?" in question.text
    raw = json.dumps(question.raw, ensure_ascii=False)
    for secret in ("Nguyễn Văn", "can_ca_phuong", str(OFFICER_ID)):
        assert secret not in raw
    sent = await officers.sees()
    assert sent.text == "✅ Đã gửi câu hỏi cho người báo tin (tin #1)."

    await resident.taps("✍️ Trả lời")
    thanks = await resident.says("Khoảng 9 giờ tối, xe máy màu đỏ")
    assert thanks.text.startswith("✅ Đã gửi câu trả lời cho cán bộ (tin #1).")
    answer = await officers.sees()
    assert answer.text == "💬 Tin #1 · Người báo tin trả lời:\nKhoảng 9 giờ tối, xe máy màu đỏ"
    assert answer.reply_to == card.message_id
    seen = json.dumps([m.raw for m in emulator.messages(officers.chat_id)], ensure_ascii=False)
    for secret in (str(resident.user.id), "Trần Văn", "tran_van_bian_secret"):
        assert secret not in seen


async def test_a_reply_to_the_question_reaches_the_officers_too(
    resident: Person, officers: Group, officer: Officer, emulator: BotApiEmulator
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.replies(card, "Có biết biển số xe không?")  # a reply to the card asks too
    question = await resident.sees()
    assert "Có biết biển số xe không?" in question.text
    await officers.sees()
    await emulator.send_text(resident.user, "Biển 36B1-123.45", reply_to=question.message_id)
    await resident.sees()
    answer = await officers.sees()
    assert answer.text.endswith("Biển 36B1-123.45") and answer.reply_to == card.message_id


async def test_without_contact_the_officer_is_told_no_question_can_be_asked(
    resident: Person, officers: Group, officer: Officer
) -> None:
    await walk_tip(resident, contact=False)
    card = await officers.sees()
    assert "🔕 Người báo tin không muốn được liên hệ" in card.text
    notice, alert = await officer.taps_and_reads(card, "❓ Hỏi người báo tin")
    assert alert and notice == "Người báo tin không cho phép liên hệ, nên không hỏi thêm được."


async def test_a_note_stays_with_the_officers(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.taps_and_reads(card, "📝 Ghi chú")
    prompt = await officers.sees()
    await officer.replies(prompt, "Đã cử tổ tuần tra qua lúc 21h")
    saved = await officers.sees()
    assert saved.text == "📝 Đã lưu ghi chú cho tin #1."
    await edited(resident.emulator, card, 1)
    assert "🕑 Gần nhất: Nguyễn Văn Cán ghi chú" in card.text
    async with unit_of_work(runtime.services.sessions) as session:
        events = (await session.exec(select(TipEvent))).all()
    assert [(e.action, e.detail) for e in events] == [("note", "Đã cử tổ tuần tra qua lúc 21h")]
    texts = [m.content for m in resident.emulator.bot_messages(resident.chat_id)]
    assert not any("tuần tra" in text for text in texts)


async def test_a_blocked_sender_cannot_send_again_and_nobody_learns_who(
    resident: Person, officers: Group, officer: Officer, emulator: BotApiEmulator
) -> None:
    await walk_tip(resident, "📄 Tội phạm khác", "quảng cáo vay tiền nhanh lãi thấp")
    card = await officers.sees()
    await officer.taps_and_reads(card, "🚫 Chặn người gửi")
    await edited(emulator, card, 1)
    notice, _ = await officer.taps_and_reads(card, "✅ Chặn 30 ngày")
    assert notice.startswith("Đã chặn người gửi.")
    await edited(emulator, card, 2)
    assert "🚫 Người gửi bị chặn đến 23/12/2026" in card.text

    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("📄 Tội phạm khác")
    await resident.taps("Không rõ")
    await resident.taps("⏭ Bỏ qua")
    await resident.says("lại quảng cáo")
    await resident.taps("⏭ Bỏ qua")
    refused = await resident.taps("✅ Gửi tin")
    assert refused.text.startswith("Hiện chưa gửi được tin từ tài khoản này.")

    other = Person(emulator, emulator.add_user(5550007777, "Hàng xóm"))
    await walk_tip(other)
    assert (await officers.sees()).text.startswith("🆕 TIN #2")


async def test_only_a_supervisor_assigns(
    resident: Person, officers: Group, officer: Officer, supervisor: Officer
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    notice, alert = await officer.taps_and_reads(card, "👥 Giao cho…")
    assert alert and notice == "Chỉ lãnh đạo đơn vị mới giao tin được."
    await officer.taps_and_reads(card, "📝 Ghi chú")  # the officer's name becomes known
    await supervisor.taps_and_reads(card, "👥 Giao cho…")
    await edited(resident.emulator, card, 1)
    assert "Nguyễn Văn Cán" in card.button_labels()
    notice, _ = await supervisor.taps_and_reads(card, "Nguyễn Văn Cán")
    assert notice == "Đã giao cho Nguyễn Văn Cán."
    await edited(resident.emulator, card, 2)
    assert "👮 Nguyễn Văn Cán" in card.text
    assert "Trưởng Công an Lê giao cho Nguyễn Văn Cán" in card.text


# Forged presses, long names, long notes (found by tests/test_fuzz.py)


def no_errors(logs: pytest.LogCaptureFixture) -> list[str]:
    """What was logged at ERROR or above: a handler that failed."""
    return [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "data",
    [
        "1:q:²:1:claim",
        "1:q:1:²:claim",
        "1:q:99999999999999999999:1:claim",
        "1:q:1:99999999999999999999:claim",
        "1:q:1:1:to:²",
        "1:q:1:1:to:99999999999999999999",
    ],
)
async def test_a_forged_number_in_a_card_button_is_refused_not_an_error(
    resident: Person,
    officers: Group,
    supervisor: Officer,
    runtime: Runtime,
    logs: pytest.LogCaptureFixture,
    data: str,
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    query = await supervisor.emulator.click_data(supervisor.user, card, data)
    await supervisor.emulator.wait_until(
        lambda emu: any(a["callback_query_id"] == query for a in emu.callback_answers)
    )
    [answer] = [a for a in supervisor.emulator.callback_answers if a["callback_query_id"] == query]
    assert answer["show_alert"]
    assert answer["text"] in (
        "Nút không hợp lệ.",
        "Chỉ lãnh đạo đơn vị mới giao tin được.",
        "Tin này không thuộc phường, xã của nhóm này.",
        "Thẻ tin đã thay đổi, vừa được cập nhật lại. Hãy bấm lại nếu vẫn cần.",
    )
    await runtime.dispatcher.idle()
    assert no_errors(logs) == []
    tip = await tip_row(runtime)
    assert (tip.status, tip.assignee_id, tip.card_version) == (TipStatus.NEW, None, 1)


async def test_officers_with_the_longest_names_telegram_allows_claim_and_assign(
    resident: Person,
    officers: Group,
    officer: Officer,
    supervisor: Officer,
    runtime: Runtime,
    logs: pytest.LogCaptureFixture,
) -> None:
    # 64 + 64 characters: a full name of 129, over the 128 the officers table keeps, and over
    # the 64 an audit entry's before/after keep (an assignment records names there).
    officer.user.first_name, officer.user.last_name = "Nguyễn" + "ă" * 58, "Cán" + "ơ" * 61
    supervisor.user.first_name, supervisor.user.last_name = "Lê" + "ê" * 62, "Trưởng" * 10 + "ab"
    await walk_tip(resident)
    card = await officers.sees()
    notice, _ = await officer.taps_and_reads(card, "✋ Nhận xử lý")
    assert notice == "Bạn đã nhận xử lý tin #1."
    await edited(resident.emulator, card, 1)
    await supervisor.taps_and_reads(card, "👥 Giao cho…")
    await edited(resident.emulator, card, 2)
    long_name = f"{officer.user.first_name} {officer.user.last_name}"[:128]
    notice, _ = await supervisor.taps_and_reads(card, long_name)
    assert notice == f"Đã giao cho {long_name}."
    assert no_errors(logs) == []
    tip = await tip_row(runtime)
    assert tip.assignee_name == long_name
    async with unit_of_work(runtime.services.sessions) as session:
        events = (await session.exec(select(TipEvent).order_by(col(TipEvent.id)))).all()
    assert [(e.action, e.after) for e in events] == [
        ("claim", "acknowledged"),
        ("assign", long_name[:64]),
    ]


async def test_an_officer_name_with_control_characters_is_stored_without_them(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime
) -> None:
    # PostgreSQL refuses NUL in text: the claim used to fail.
    officer.user.first_name = "Nguyễn\x00Văn\x07"
    await walk_tip(resident)
    card = await officers.sees()
    notice, _ = await officer.taps_and_reads(card, "✋ Nhận xử lý")
    assert notice == "Bạn đã nhận xử lý tin #1."
    assert (await tip_row(runtime)).assignee_name == "NguyễnVăn Cán"


async def test_a_note_over_the_limit_is_refused_and_nothing_saved(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime
) -> None:
    await walk_tip(resident)
    card = await officers.sees()
    await officer.taps_and_reads(card, "📝 Ghi chú")
    prompt = await officers.sees()
    await officer.replies(prompt, "Ghi chú rất dài. " * 300)
    refused = await officers.sees()
    assert refused.text.startswith("Ghi chú dài quá (3500 ký tự là tối đa) nên chưa được lưu.")
    async with unit_of_work(runtime.services.sessions) as session:
        assert (await session.exec(select(TipEvent))).all() == []
