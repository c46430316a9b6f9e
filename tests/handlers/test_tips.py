"""A resident sends an anonymous tip: the chat as they and the officers see it."""

from __future__ import annotations

from sqlmodel import select

from chat import Group, Person
from pictures import jpeg, picture
from storage.db import unit_of_work
from storage.models import Draft, Tip
from tests_support import RECEIPT, send_tip

PHOTO = jpeg(64, 48)


async def test_resident_sends_a_tip_by_tapping(resident: Person, officers: Group) -> None:
    welcome = await resident.says("/start")
    assert "Hòm thư tố giác ma túy · Phường Đông Cương" in welcome.text
    assert "KHÔNG thấy tên" in welcome.text
    assert "Cảnh sát 113: 113" in welcome.text
    assert welcome.button_labels() == [
        "📝 Gửi tin tố giác",
        "🔎 Tra cứu tin đã gửi",
        "📬 Nhận tin tuyên truyền hằng tháng",
        "📞 Đường dây nóng",
        "🔒 Quyền riêng tư",
        "🌐 English",
    ]

    categories = await resident.taps("📝 Gửi tin tố giác")
    assert "Bước 1/5" in categories.text
    assert "⚠️ Ngáo đá, loạn thần (nguy hiểm)" in categories.button_labels()
    assert categories.button_labels()[-1] == "✖️ Hủy"

    areas = await resident.taps("💊 Mua bán ma túy")
    assert "Bước 2/5" in areas.text
    assert "Khu phố 10" in areas.button_labels()
    assert "Không rõ" in areas.button_labels()

    place = await resident.taps("Khu phố 3")
    assert "Bước 3/5" in place.text
    what = await resident.says("Quán nước đầu ngõ 12")
    assert "Bước 4/5" in what.text
    files = await resident.says("Tối nào cũng có 2 thanh niên bán ma túy đá ở đây")
    assert "Bước 5/5" in files.text

    await resident.emulator.send_photo(resident.user, PHOTO)
    kept = await resident.sees()
    assert "Đã nhận tệp (1)" in kept.text
    review = await resident.taps("✅ Xong (1 tệp)")
    assert "Xem lại tin" in review.text
    assert "📌 Loại việc: 💊 Mua bán ma túy" in review.text
    assert "🏘 Khu phố: Khu phố 3" in review.text
    assert "📍 Địa điểm: Quán nước đầu ngõ 12" in review.text
    assert "📎 Ảnh, tệp: 1" in review.text
    assert review.button_labels()[:1] == ["✅ Gửi tin"]

    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #1" in sent.text
    assert RECEIPT.search(sent.text)

    card = await officers.sees()
    assert card.text.startswith("🆕 TIN #1 · 💊 Mua bán ma túy")
    assert "🏘 Khu vực: Khu phố 3" in card.text
    assert "📍 Địa điểm: Quán nước đầu ngõ 12" in card.text
    assert "🕐 Nhận lúc: 08:10 23/11/2026" in card.text
    assert "Tối nào cũng có 2 thanh niên bán ma túy đá ở đây" in card.text
    photo = await officers.sees()
    assert photo.kind == "photo"
    assert photo.reply_to == card.message_id
    assert photo.file_bytes is not None and picture(photo.file_bytes) == ("JPEG", (64, 48))
    assert photo.caption == "Tin #1 · tệp 1/1"


async def test_the_tip_is_stored_and_the_draft_is_gone(
    resident: Person, officers: Group, runtime: object
) -> None:
    await send_tip(resident)
    await officers.sees()
    services = runtime.services  # type: ignore[attr-defined]
    async with unit_of_work(services.sessions) as session:
        tips = (await session.exec(select(Tip))).all()
        drafts = (await session.exec(select(Draft))).all()
    assert [(t.id, t.category, t.area, t.status) for t in tips] == [
        (1, "dealing", "Khu phố 3", "new")
    ]
    assert drafts == []
