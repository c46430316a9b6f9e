"""Flows several test modules walk through."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlmodel import SQLModel

from bot.app import Runtime
from bot.emulator import EmuMessage
from chat import Group, Officer, Person
from conftest import OFFICER_ID
from pictures import jpeg
from storage.db import unit_of_work

RECEIPT = re.compile(r"\b(\d{4}) (\d{4}) (\d{4}) (\d{4})\b")
MENU_BUTTONS = [
    "📝 Gửi tin tố giác",
    "🔎 Tra cứu tin đã gửi",
    "📬 Nhận tin tuyên truyền hằng tháng",
    "📞 Đường dây nóng",
    "🔒 Quyền riêng tư",
    "🌐 English",
]


async def send_tip(resident: Person, text: str = "Tối nào cũng có người bán ma túy đá") -> str:
    """Walk the whole flow by tapping and typing; return the receipt the resident gets."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await resident.says("Quán nước đầu ngõ 12")
    await resident.says(text)
    await resident.taps("⏭ Bỏ qua")
    done = await resident.taps("✅ Gửi tin")
    match = RECEIPT.search(done.content)
    assert match, done.content
    return "".join(match.groups())


async def send_tip_with_conversation(
    resident: Person,
    officers: Group,
    *,
    text: str,
    place: str,
    question: str = "Mấy giờ thì đông người?",
    answer: str = "Khoảng 9 giờ tối",
) -> tuple[str, EmuMessage, Officer]:
    """A tip with a place, a location and a photo; an officer asks, the resident answers.

    Return the receipt, the card and the officer.
    """
    emulator = resident.emulator
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await resident.says(place)
    await emulator.send_location(resident.user, 21.02851, 105.85423)
    await resident.sees()
    await resident.says(text)
    await emulator.send_photo(resident.user, jpeg())
    await resident.sees()
    await resident.taps("✅ Xong (1 tệp)")
    done = await resident.taps("✅ Gửi tin")
    match = RECEIPT.search(done.content)
    assert match, done.content
    card = await officers.sees()
    officer = Officer(emulator, emulator.add_user(OFFICER_ID, "Phạm Cán"), officers)
    await officer.replies(card, question)
    asked = await resident.sees()
    await emulator.send_text(resident.user, answer, reply_to=asked.message_id)
    await resident.sees()
    await officers.sees()  # the answer, under the card
    await officers.settle()
    return "".join(match.groups()), card, officer


async def database_text(runtime: Runtime) -> str:
    """Every row of every table as stored, the way a dump or a stolen backup reads."""
    rows: list[str] = []
    async with unit_of_work(runtime.services.sessions) as session:
        for table in SQLModel.metadata.sorted_tables:
            result = await session.exec(text(f"SELECT * FROM {table.name}"))  # type: ignore[call-overload]
            rows += [repr(tuple(row)) for row in result]
    return "\n".join(rows)
