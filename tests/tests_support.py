"""Flows several test modules walk through."""

from __future__ import annotations

import re

from chat import Person

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
