"""The anonymous conversation from the resident's side: receipts, restarts, strangers."""

from __future__ import annotations

import logging

import pytest
from test_queue import walk_tip

from bot.app import Runtime, open_services
from bot.config import Settings
from bot.emulator import BotApiEmulator
from chat import Group, Officer, Person
from conftest import OFFICER_ID, SECRET, TOKEN, FakeClock
from tests_support import RECEIPT


@pytest.fixture
def officer(emulator: BotApiEmulator, officers: Group) -> Officer:
    """A ward officer."""
    return Officer(emulator, emulator.add_user(OFFICER_ID, "Nguyễn Văn", "Cán"), officers)


async def ask(officer: Officer, officers: Group, resident: Person, question: str) -> None:
    """The officer asks the sender of tip #1 a question by replying to its card."""
    card = officers.messages()[0]
    await officer.replies(card, question)
    await resident.sees()
    await officers.sees()


async def test_the_receipt_shows_the_conversation_and_answers_from_another_phone(
    resident: Person,
    officers: Group,
    officer: Officer,
    emulator: BotApiEmulator,
    runtime: Runtime,
) -> None:
    await walk_tip(resident)
    receipt = RECEIPT.search(emulator.bot_messages(resident.chat_id)[-1].text or "")
    assert receipt
    await officers.sees()
    await ask(officer, officers, resident, "Người bán đi xe gì?")

    phone = Person(emulator, emulator.add_user(5550004444, "Máy mới"), runtime.dispatcher.idle)
    await phone.says("/start")
    await phone.taps("🔎 Tra cứu tin đã gửi")
    found = await phone.says(receipt.group(0))
    assert "Tin #1" in found.text
    assert "Cán bộ tiếp nhận hỏi: Người bán đi xe gì?" in found.text
    assert found.text.endswith("✍️ Muốn trả lời cán bộ, hãy gõ câu trả lời rồi gửi ngay.")
    thanks = await phone.says("Xe Wave màu xanh")
    assert thanks.text.startswith("✅ Đã gửi câu trả lời cho cán bộ (tin #1).")
    answer = await officers.sees()
    assert answer.text.endswith("Xe Wave màu xanh")

    again = await phone.says(receipt.group(0))
    assert "Bạn trả lời: Xe Wave màu xanh" in again.text


async def test_a_question_asked_before_a_restart_can_be_answered_after_it(
    resident: Person,
    officers: Group,
    officer: Officer,
    emulator: BotApiEmulator,
    runtime: Runtime,
    settings: Settings,
    clock: FakeClock,
) -> None:
    await walk_tip(resident)
    await officers.sees()
    card = officers.messages()[0]
    await officer.replies(card, "Có camera gần đó không?")
    question = await resident.sees()
    await officers.sees()
    await runtime.stop()

    restarted = Runtime(
        settings, await open_services(settings, secret=SECRET, clock=clock), token=TOKEN
    )
    await restarted.start(jobs=False)
    try:
        await emulator.send_text(resident.user, "Có, ở cột điện", reply_to=question.message_id)
        await emulator.next_bot_message(resident.chat_id)
        answer = await emulator.next_bot_message(officers.chat_id)
        assert answer.text == "💬 Tin #1 · Người báo tin trả lời:\nCó, ở cột điện"
        assert answer.reply_to == card.message_id
    finally:
        await restarted.stop()


async def test_nobody_else_can_answer_for_the_sender(
    resident: Person,
    officers: Group,
    officer: Officer,
    emulator: BotApiEmulator,
    runtime: Runtime,
) -> None:
    await walk_tip(resident)
    await officers.sees()
    await ask(officer, officers, resident, "Ai bán?")
    stranger = Person(emulator, emulator.add_user(5550003333, "Lạ"), runtime.dispatcher.idle)
    welcome = await stranger.says("/start")
    await emulator.click_data(stranger.user, welcome, "1:a:1")  # a forged "Trả lời" for tip #1
    refused = await stranger.sees()
    assert refused.text.startswith("Nút đó thuộc tin nhắn cũ")
    await stranger.says("tôi trả lời thay")
    assert len(officers.messages()) == 2  # the card and "question sent": nothing from him


@pytest.mark.parametrize("forged", ["1:a:²", "1:a:99999999999999999999", "1:a:-1", "1:a:"])
async def test_a_forged_answer_button_is_stale_not_an_error(
    resident: Person, emulator: BotApiEmulator, logs: pytest.LogCaptureFixture, forged: str
) -> None:
    menu = await resident.says("/start")
    await emulator.click_data(resident.user, menu, forged)
    answer = await resident.sees()
    assert answer.text.startswith("Nút đó thuộc tin nhắn cũ, nên bot không làm theo.")
    assert [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR] == []
