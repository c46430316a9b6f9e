"""Whatever a resident sends while writing a tip: typed answers, odd input, old buttons.

Bad input never loses the draft, and Vietnamese typed without diacritics is understood.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pytest
from sqlmodel import SQLModel, select

from bot.app import Runtime
from bot.emulator import BotApiEmulator, EmuMessage
from chat import Group, Person
from pictures import jpeg, picture
from storage.db import unit_of_work
from storage.models import ContactLink, Draft, Tip, TipAttachment

M = TypeVar("M", bound=SQLModel)

WORDS = "Tối nào cũng có hai thanh niên bán ma túy đá ở quán nước đầu ngõ 12"
PLACE = "Quán nước đầu ngõ 12"
WHAT = "Tối nào cũng có 2 thanh niên bán ma túy đá ở đây"

CATEGORY_STEP = "Bước 1/5\nBạn muốn báo về việc gì?"
AREA_STEP = "Bước 2/5\nViệc này ở khu phố, thôn nào?"
PLACE_STEP = "Bước 3/5\nỞ đâu cụ thể?"
TEXT_STEP = "Bước 4/5\nBạn thấy gì?"
FILES_STEP = "Bước 5/5\nGửi ảnh, video, ghi âm hoặc tệp nếu có"
PICK = "Bạn hãy bấm một nút bên dưới (hoặc gõ số thứ tự của nút)."
UNSUPPORTED = (
    "Bot chỉ nhận chữ, ảnh, video, ghi âm, tệp và vị trí. Nhãn dán, danh bạ hay số điện "
    "thoại không cần gửi: tin là ẩn danh."
)
STALE = "Nút đó thuộc tin nhắn cũ, nên bot không làm theo."
MENU = "Bạn muốn làm gì? Bấm một nút bên dưới."
CANCELLED = "Đã hủy. Tin chưa được gửi và đã bị xóa."


def photo(n: int) -> bytes:
    """A JPEG n pixels wider than the last, so the group's cleaned copies can be told apart."""
    return jpeg(40 + n, 30)


def prose(length: int) -> str:
    """Vietnamese words, exactly ``length`` characters, no space at either end."""
    text = ((WORDS + " ") * (length // len(WORDS) + 2))[:length]
    return text[:-1] + "." if text.endswith(" ") else text


async def rows(runtime: Runtime, model: type[M]) -> list[M]:
    """Every stored row of one table."""
    async with unit_of_work(runtime.services.sessions) as session:
        return list((await session.exec(select(model))).all())


async def draft(runtime: Runtime) -> tuple[str, dict[str, Any], int]:
    """The one draft being written: its step, its data and its version."""
    (only,) = await rows(runtime, Draft)
    return only.step, only.data, only.version


async def start_tip(resident: Person) -> EmuMessage:
    await resident.says("/start")
    return await resident.taps("📝 Gửi tin tố giác")


async def to_text_step(resident: Person) -> EmuMessage:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    return await resident.says(PLACE)


async def to_files_step(resident: Person, text: str = WHAT) -> EmuMessage:
    await to_text_step(resident)
    return await resident.says(text)


async def to_review(resident: Person, text: str = WHAT) -> EmuMessage:
    await to_files_step(resident, text)
    return await resident.taps("⏭ Bỏ qua")


# Typed answers


async def test_typing_a_category_without_diacritics_picks_it(
    resident: Person, runtime: Runtime
) -> None:
    await start_tip(resident)
    areas = await resident.says("mua ban ma tuy")
    assert areas.text.startswith(AREA_STEP)
    assert "Khu phố 3" in areas.button_labels()
    step, data, _ = await draft(runtime)
    assert (step, data["category"]) == ("a", "dealing")


async def test_typing_a_number_picks_that_button(resident: Person, runtime: Runtime) -> None:
    categories = await start_tip(resident)
    assert categories.button_labels()[2] == "🏚 Tụ điểm, nơi chứa chấp"
    areas = await resident.says("3")
    assert areas.text.startswith(AREA_STEP)
    _, data, _ = await draft(runtime)
    assert data["category"] == "den"


async def test_typing_an_area_without_diacritics_picks_it(
    resident: Person, runtime: Runtime
) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    place = await resident.says("khu pho 3")
    assert place.text.startswith(PLACE_STEP)
    step, data, _ = await draft(runtime)
    assert (step, data["area"]) == ("p", "Khu phố 3")


async def test_typing_a_back_or_unknown_label_works_like_the_button(
    resident: Person, runtime: Runtime
) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    categories = await resident.says("quay lai")
    assert categories.text == CATEGORY_STEP
    await resident.says("mua ban ma tuy")
    place = await resident.says("khong ro")
    assert place.text.startswith(PLACE_STEP)
    step, data, _ = await draft(runtime)
    assert (step, data["area"]) == ("p", None)


async def test_an_unmatched_text_at_a_button_step_repeats_the_step(
    resident: Person, runtime: Runtime
) -> None:
    categories = await start_tip(resident)
    again = await resident.says("có người bán ma túy")
    assert again.text == f"{PICK}\n{CATEGORY_STEP}"
    assert again.button_labels() == categories.button_labels()
    number = await resident.says("42")
    assert number.text == f"{PICK}\n{CATEGORY_STEP}"
    step, data, _ = await draft(runtime)
    assert (step, data["category"]) == ("c", None)


async def test_a_circled_digit_at_a_button_step_repeats_the_step(resident: Person) -> None:
    await start_tip(resident)
    again = await resident.says("①")
    assert again.text == f"{PICK}\n{CATEGORY_STEP}"


async def test_an_unknown_command_in_the_middle_repeats_the_step(resident: Person) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    again = await resident.says("/xoa")
    assert again.text == f"Bot không hiểu lệnh này.\n{AREA_STEP}"
    assert "Khu phố 3" in again.button_labels()


# Things the bot does not take


async def test_a_sticker_or_contact_card_repeats_the_step_and_keeps_the_draft(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await start_tip(resident)
    areas = await resident.taps("💊 Mua bán ma túy")

    await emulator.send_sticker(resident.user)
    sticker = await resident.sees()
    assert sticker.text == f"{UNSUPPORTED}\n{AREA_STEP}"
    assert sticker.button_labels() == areas.button_labels()

    await emulator.send_contact(
        resident.user, phone="+84901234567", first_name="Trần Văn", user_id=resident.user.id
    )
    contact = await resident.sees()
    assert contact.text == f"{UNSUPPORTED}\n{AREA_STEP}"
    assert contact.button_labels() == areas.button_labels()

    await resident.taps("Khu phố 3")
    await resident.says(PLACE)
    await resident.says(WHAT)
    await resident.taps("⏭ Bỏ qua")
    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #1" in sent.text
    card = await officers.sees()
    assert card.text.startswith("🆕 TIN #1 · 💊 Mua bán ma túy")
    assert "🏘 Khu vực: Khu phố 3" in card.text
    assert card.text.endswith(f"📝 Nội dung:\n{WHAT}")
    assert "+84901234567" not in card.text


# Long texts


async def test_a_long_text_split_by_telegram_is_joined_in_the_tip(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await to_text_step(resident)
    first, second = prose(4096), prose(904)
    # Telegram clients send a 5,000-character text as two messages, back to back.
    await resident.send(first)
    await resident.send(second)
    files = await resident.sees()
    assert files.text.startswith(FILES_STEP)
    appended = await resident.sees()
    assert appended.text.startswith(f"📝 Đã thêm vào nội dung tin.\n{FILES_STEP}")

    review = await resident.taps("⏭ Bỏ qua")
    assert f"📝 Nội dung: {first[:600]}… (còn 4401 ký tự)" in review.text
    await resident.taps("✅ Gửi tin")
    (tip,) = await rows(runtime, Tip)
    assert tip.text == f"{first}\n{second}"
    assert len(tip.text) == 4096 + 1 + 904


async def test_a_long_tip_reaches_the_group_split_in_pieces(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await to_text_step(resident)
    first, second = prose(4096), prose(904)
    await resident.send(first)
    await resident.send(second)
    await resident.sees()
    await resident.sees()
    await resident.taps("⏭ Bỏ qua")
    await resident.taps("✅ Gửi tin")

    def posted_or_refused(e: BotApiEmulator) -> bool:
        to_group = [c for c in e.calls if c.params.get("chat_id") == officers.chat_id]
        return len(officers.messages()) >= 2 or any(not c.ok for c in to_group)

    # A refused post fails at once: wait for that, not for a timeout.
    await emulator.wait_until(posted_or_refused)
    card, rest = officers.messages()
    assert card.text.startswith("🆕 TIN #1 · 💊 Mua bán ma túy")
    assert rest.reply_to == card.message_id
    assert card.text.endswith("… (xem tiếp bên dưới)")
    shown = card.text.removesuffix("… (xem tiếp bên dưới)")
    joined = "".join((shown + rest.text).split())
    assert joined.endswith("".join(f"{first}\n{second}".split()))


async def test_a_text_over_the_limit_is_refused_and_the_earlier_text_kept(
    resident: Person, runtime: Runtime
) -> None:
    await to_text_step(resident)
    parts = [prose(3000), prose(3000)]
    await resident.says(parts[0])
    await resident.says(parts[1])
    refused = await resident.says(prose(3000))
    assert refused.text.startswith(
        "Nội dung dài quá (8.000 ký tự là tối đa). Phần vừa gửi chưa được thêm; "
        f"bạn viết ngắn lại nhé.\n{FILES_STEP}"
    )
    step, data, _ = await draft(runtime)
    assert (step, data["text"]) == ("f", "\n".join(parts))

    review = await resident.taps("⏭ Bỏ qua")
    assert "(còn 5401 ký tự)" in review.text
    await resident.taps("✅ Gửi tin")
    (tip,) = await rows(runtime, Tip)
    assert tip.text == "\n".join(parts)


async def test_a_place_over_300_characters_is_refused(resident: Person, runtime: Runtime) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    refused = await resident.says(prose(301))
    assert refused.text.startswith(
        "Địa điểm dài quá (300 ký tự là tối đa). Bạn ghi ngắn lại; chi tiết khác để ở bước "
        f"sau.\n{PLACE_STEP}"
    )
    step, data, _ = await draft(runtime)
    assert (step, data["place"]) == ("p", None)
    accepted = await resident.says(prose(300))
    assert accepted.text.startswith(TEXT_STEP)
    _, data, _ = await draft(runtime)
    assert data["place"] == prose(300)


# Old and forged buttons


async def test_an_old_button_re_shows_the_current_step(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    categories = await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    before = await draft(runtime)

    await emulator.click_data(resident.user, categories, "1:t:c:use")
    stale = await resident.sees()
    assert stale.text == f"{STALE}\n{AREA_STEP}"
    assert "Khu phố 3" in stale.button_labels()
    assert await draft(runtime) == before
    assert before[1]["category"] == "dealing"


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        ("garbage", f"{STALE}\n\n{MENU}"),
        ("1:zz:what", f"{STALE}\n\n{MENU}"),
        ("1:m:lang-xx", f"{STALE}\n\n{MENU}"),
        ("1:t:c:nonexistent", f"{STALE}\n{AREA_STEP}"),
        ("1:t:a:nonexistent", f"{STALE}\n{AREA_STEP}"),
        ("1:t:a:99", f"{STALE}\n{AREA_STEP}"),
        ("1:t:a:-1", f"{STALE}\n{AREA_STEP}"),
        ("1:t:r:send", f"{STALE}\n{AREA_STEP}"),
        ("1:t:", f"{STALE}\n{AREA_STEP}"),
    ],
)
async def test_forged_button_data_changes_nothing(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime, data: str, answer: str
) -> None:
    await start_tip(resident)
    areas = await resident.taps("💊 Mua bán ma túy")
    before = await draft(runtime)

    await emulator.click_data(resident.user, areas, data)
    reply = await resident.sees()
    assert reply.text == answer
    assert await draft(runtime) == before

    place = await resident.says("khu pho 3")
    assert place.text.startswith(PLACE_STEP)


async def test_the_bot_answers_every_button_press(
    resident: Person, emulator: BotApiEmulator
) -> None:
    categories = await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    pressed = [
        await emulator.click_data(resident.user, categories, "1:t:c:use"),
        await emulator.click_data(resident.user, categories, "garbage"),
        await emulator.click_data(resident.user, categories, "1:t:a:99"),
    ]
    for _ in pressed:
        await resident.sees()
    await resident.taps("◀️ Quay lại")
    answered = [answer["callback_query_id"] for answer in emulator.callback_answers]
    assert set(pressed) <= set(answered)
    # Two taps by label plus the three presses above, each answered exactly once.
    assert len(answered) == len(set(answered)) == len(emulator.world.callback_queries) == 6


async def test_a_tapped_message_loses_its_buttons(
    resident: Person, emulator: BotApiEmulator
) -> None:
    welcome = await resident.says("/start")
    categories = await resident.taps("📝 Gửi tin tố giác")
    areas = await resident.taps("💊 Mua bán ma túy")
    await emulator.wait_until(lambda _: welcome.buttons == [] and categories.buttons == [])
    assert "Khu phố 3" in areas.button_labels()


async def test_a_double_tap_on_send_stores_one_tip(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    review = await to_review(resident)
    await emulator.click(resident.user, review, "✅ Gửi tin")
    await emulator.click(resident.user, review, "✅ Gửi tin")
    sent = await resident.sees()
    again = await resident.sees()
    assert "Đã gửi tin #1" in sent.text
    assert again.text == f"Tin đó đã gửi hoặc đã hủy.\n\n{MENU}"
    assert len(await rows(runtime, Tip)) == 1
    await officers.sees()
    await resident.says("/start")
    assert len(officers.messages()) == 1


# Leaving and coming back


async def test_start_in_the_middle_offers_to_continue(resident: Person, runtime: Runtime) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    offer = await resident.says("/start")
    assert offer.text == "Bạn đang viết dở một tin chưa gửi. Viết tiếp hay bỏ tin đó?"
    assert offer.button_labels() == ["▶️ Viết tiếp", "🗑 Bỏ tin đó"]

    back = await resident.taps("▶️ Viết tiếp")
    assert back.text == f"Viết tiếp tin của bạn.\n{AREA_STEP}"
    assert "Khu phố 3" in back.button_labels()
    step, data, _ = await draft(runtime)
    assert (step, data["category"]) == ("a", "dealing")


async def test_start_in_the_middle_then_discard_deletes_the_draft(
    resident: Person, runtime: Runtime
) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    await resident.says("/start")
    gone = await resident.taps("🗑 Bỏ tin đó")
    assert gone.text == f"Đã bỏ tin viết dở.\n\n{MENU}"
    assert gone.button_labels()[0] == "📝 Gửi tin tố giác"
    assert await rows(runtime, Draft) == []
    fresh = await resident.taps("📝 Gửi tin tố giác")
    assert fresh.text.startswith("📝 Gửi tin tố giác: 5 bước ngắn.")
    assert fresh.text.endswith(CATEGORY_STEP)


async def test_huy_cancels_the_tip(resident: Person, officers: Group, runtime: Runtime) -> None:
    await to_files_step(resident)
    cancelled = await resident.says("/huy")
    assert cancelled.text == f"{CANCELLED}\n\n{MENU}"
    assert await rows(runtime, Draft) == []
    nothing = await resident.says("/huy")
    assert nothing.text == f"Không có tin nào đang viết.\n\n{MENU}"
    assert officers.messages() == []


async def test_the_cancel_button_cancels_the_tip(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    await to_text_step(resident)
    cancelled = await resident.taps("✖️ Hủy")
    assert cancelled.text == f"{CANCELLED}\n\n{MENU}"
    assert await rows(runtime, Draft) == []
    await resident.says("/start")
    assert officers.messages() == []
    assert await rows(runtime, Tip) == []


async def test_back_goes_to_the_previous_step(resident: Person, runtime: Runtime) -> None:
    await to_text_step(resident)
    place = await resident.taps("◀️ Quay lại")
    assert place.text.startswith(PLACE_STEP)
    area = await resident.taps("◀️ Quay lại")
    assert area.text == AREA_STEP
    category = await resident.taps("◀️ Quay lại")
    assert category.text == CATEGORY_STEP
    assert "◀️ Quay lại" not in category.button_labels()
    step, data, _ = await draft(runtime)
    assert (step, data["category"], data["area"], data["place"]) == (
        "c",
        "dealing",
        "Khu phố 3",
        PLACE,
    )


async def test_editing_the_text_from_the_review_replaces_it(
    resident: Person, runtime: Runtime
) -> None:
    await to_review(resident, "Chữ cũ")
    fields = await resident.taps("✏️ Sửa")
    assert fields.text == "Bạn muốn sửa phần nào?"
    assert fields.button_labels() == [
        "Loại việc",
        "Khu phố",
        "Địa điểm",
        "Nội dung",
        "Ảnh, tệp",
        "◀️ Quay lại",
    ]
    ask = await resident.taps("Nội dung")
    assert ask.text.startswith(TEXT_STEP)
    review = await resident.says("Chữ mới")
    assert review.text.startswith("📋 Xem lại tin trước khi gửi:")
    assert "📝 Nội dung: Chữ mới\n" in review.text
    assert "Chữ cũ" not in review.text
    await resident.taps("✅ Gửi tin")
    (tip,) = await rows(runtime, Tip)
    assert tip.text == "Chữ mới"


async def test_back_from_a_field_opened_by_edit_returns_to_the_review(
    resident: Person, runtime: Runtime
) -> None:
    await to_review(resident)
    await resident.taps("✏️ Sửa")
    await resident.taps("Địa điểm")
    review = await resident.taps("◀️ Quay lại")
    assert review.text.startswith("📋 Xem lại tin trước khi gửi:")
    assert f"📍 Địa điểm: {PLACE}\n" in review.text
    step, data, _ = await draft(runtime)
    assert (step, data["place"], data["editing"]) == ("r", PLACE, False)


async def test_editing_the_category_can_go_back_to_the_review(
    resident: Person, runtime: Runtime
) -> None:
    await to_review(resident)
    await resident.taps("✏️ Sửa")
    categories = await resident.taps("Loại việc")
    assert categories.text == CATEGORY_STEP
    # Without it the only way out would be «✖️ Hủy», which throws the whole tip away.
    assert categories.button_labels()[-2:] == ["◀️ Quay lại", "✖️ Hủy"]
    review = await resident.taps("◀️ Quay lại")
    assert "📌 Loại việc: 💊 Mua bán ma túy\n" in review.text


async def test_editing_the_category_returns_straight_to_the_review(resident: Person) -> None:
    await to_review(resident)
    await resident.taps("✏️ Sửa")
    await resident.taps("Loại việc")
    review = await resident.says("su dung ma tuy")
    assert review.text.startswith("📋 Xem lại tin trước khi gửi:")
    assert "📌 Loại việc: 💉 Sử dụng ma túy\n" in review.text


async def test_a_long_text_typed_while_editing_keeps_both_parts(
    resident: Person, runtime: Runtime
) -> None:
    await to_review(resident, "Chữ cũ")
    await resident.taps("✏️ Sửa")
    await resident.taps("Nội dung")
    first, second = prose(4096), prose(904)
    await resident.send(first)
    await resident.send(second)
    review = await resident.sees()
    assert review.text.startswith("📋 Xem lại tin trước khi gửi:")
    appended = await resident.sees()
    assert appended.text.startswith("📝 Đã thêm vào nội dung tin.\n📋 Xem lại tin trước khi gửi:")
    assert "(còn 4401 ký tự)" in appended.text
    await resident.taps("✅ Gửi tin")
    (tip,) = await rows(runtime, Tip)
    assert tip.text == f"{first}\n{second}"


async def test_a_photo_caption_while_editing_the_text_replaces_it(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await to_review(resident, "Chữ cũ")
    await resident.taps("✏️ Sửa")
    await resident.taps("Nội dung")
    await emulator.send_photo(resident.user, photo(1), caption="Chữ mới")
    review = await resident.sees()
    assert "📝 Nội dung: Chữ mới\n📎 Ảnh, tệp: 1\n" in review.text


# Locations and files


async def test_a_shared_location_puts_a_map_link_on_the_card(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await start_tip(resident)
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await emulator.send_location(resident.user, 21.5942, 105.8482)
    what = await resident.sees()
    assert what.text.startswith(TEXT_STEP)
    await resident.says(WHAT)
    review = await resident.taps("⏭ Bỏ qua")
    assert "📍 Địa điểm: (đã gửi vị trí)" in review.text
    await resident.taps("✅ Gửi tin")
    card = await officers.sees()
    assert "🗺 Vị trí: https://maps.google.com/?q=21.59420,105.84820" in card.text
    assert "📍 Địa điểm" not in card.text


async def test_a_photo_with_a_caption_is_the_text_and_the_attachment(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await to_text_step(resident)
    await emulator.send_photo(resident.user, photo(1), caption=WHAT)
    files = await resident.sees()
    assert files.text.startswith(f"{FILES_STEP} (đã nhận 1/10)")
    review = await resident.taps("✅ Xong (1 tệp)")
    assert f"📝 Nội dung: {WHAT}\n📎 Ảnh, tệp: 1\n" in review.text
    await resident.taps("✅ Gửi tin")
    card = await officers.sees()
    assert card.text.endswith(f"📝 Nội dung:\n{WHAT}")
    attached = await officers.sees()
    assert (attached.kind, picture(attached.file_bytes), attached.caption) == (
        "photo",
        picture(photo(1)),
        "Tin #1 · tệp 1/1",
    )


async def test_an_album_gets_one_acknowledgment(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await to_files_step(resident)
    for n in range(1, 4):
        await emulator.send_photo(resident.user, photo(n), media_group_id="album-1")
    kept = await resident.sees()
    assert kept.text.startswith(f"📎 Đã nhận tệp (1).\n{FILES_STEP}")
    # The next answer is the review: no acknowledgment came for the 2nd and 3rd photo.
    review = await resident.taps(kept.button_labels()[0])
    assert review.text.startswith("📋 Xem lại tin trước khi gửi:")
    assert "📎 Ảnh, tệp: 3" in review.text
    await resident.taps("✅ Gửi tin")
    await officers.sees()
    copies = [(await officers.sees()).file_bytes for _ in range(3)]
    assert [picture(c) for c in copies] == [picture(photo(n)) for n in (1, 2, 3)]


async def test_an_album_with_a_caption_at_the_text_step_moves_on_once(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await to_text_step(resident)
    await emulator.send_photo(resident.user, photo(1), caption=WHAT, media_group_id="a")
    await emulator.send_photo(resident.user, photo(2), media_group_id="a")
    files = await resident.sees()
    assert files.text.startswith(f"{FILES_STEP} (đã nhận 1/10)")
    review = await resident.taps(files.button_labels()[0])
    assert f"📝 Nội dung: {WHAT}\n📎 Ảnh, tệp: 2\n" in review.text


async def test_the_eleventh_attachment_is_refused(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await to_files_step(resident)
    for n in range(1, 11):
        await emulator.send_photo(resident.user, photo(n))
        kept = await resident.sees()
        assert kept.text.startswith(f"📎 Đã nhận tệp ({n}).\n{FILES_STEP} (đã nhận {n}/10)")
    await emulator.send_photo(resident.user, photo(11))
    full = await resident.sees()
    assert full.text.startswith(
        f"Đã đủ 10 tệp, tệp này không được thêm.\n{FILES_STEP} (đã nhận 10/10)"
    )
    review = await resident.taps("✅ Xong (10 tệp)")
    assert "📎 Ảnh, tệp: 10" in review.text

    await resident.taps("✅ Gửi tin")
    card = await officers.sees()
    assert "📎 10 tệp đính kèm, gửi ngay sau thẻ này" in card.text
    files = [await officers.sees() for _ in range(10)]
    assert [picture(f.file_bytes) for f in files] == [picture(photo(n)) for n in range(1, 11)]
    assert [f.caption for f in files] == [f"Tin #1 · tệp {n}/10" for n in range(1, 11)]
    assert all(f.reply_to == card.message_id for f in files)
    await resident.says("/start")
    assert len(officers.messages()) == 11


async def test_an_album_crossing_the_limit_says_the_rest_was_refused(
    resident: Person, emulator: BotApiEmulator
) -> None:
    await to_files_step(resident)
    for n in range(1, 9):
        await emulator.send_photo(resident.user, photo(n))
        await resident.sees()
    for n in range(9, 12):
        await emulator.send_photo(resident.user, photo(n), media_group_id="late")
    kept = await resident.sees()
    assert "Đã nhận tệp (9)" in kept.text
    refused = await resident.sees()
    assert refused.text.startswith("Đã đủ 10 tệp, tệp này không được thêm.")
    review = await resident.taps("✅ Xong (10 tệp)")
    assert "📎 Ảnh, tệp: 10" in review.text


async def test_files_of_every_kind_reach_the_group_in_order_never_forwarded(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    await to_files_step(resident)
    await emulator.send_document(
        resident.user, b"%PDF-1.4 list", file_name="danh-sach.pdf", mime_type="application/pdf"
    )
    await resident.sees()
    await emulator.send_voice(resident.user, b"OggS voice note")
    await resident.sees()
    await emulator.send_photo(resident.user, photo(1))
    await resident.sees()
    await emulator.send_video(resident.user, b"\x00\x00\x00\x18ftypmp42 video")
    await resident.sees()
    await resident.taps("✅ Xong (4 tệp)")
    await resident.taps("✅ Gửi tin")

    card = await officers.sees()
    files = [await officers.sees() for _ in range(4)]
    assert [
        (f.kind, picture(f.file_bytes) if f.kind == "photo" else f.file_bytes) for f in files
    ] == [
        ("document", b"%PDF-1.4 list"),
        ("voice", b"OggS voice note"),
        ("photo", picture(photo(1))),
        ("video", b"\x00\x00\x00\x18ftypmp42 video"),
    ]
    assert [f.caption for f in files] == [f"Tin #1 · tệp {n}/4" for n in range(1, 5)]
    assert {f.reply_to for f in files} == {card.message_id}
    assert emulator.calls_to("forwardMessage") == []
    assert emulator.calls_to("copyMessage") == []


# Follow-up questions


async def test_turning_follow_ups_off_stores_no_contact_link(
    resident: Person, runtime: Runtime
) -> None:
    review = await to_review(resident)
    assert "🔔 Cán bộ được hỏi thêm qua bot (vẫn không biết bạn là ai)." in review.text
    off = await resident.taps("🔔 Cho cán bộ hỏi thêm: Có")
    assert "🔕 Cán bộ không hỏi thêm được." in off.text
    assert off.button_labels() == [
        "✅ Gửi tin",
        "🔕 Cho cán bộ hỏi thêm: Không",
        "✏️ Sửa",
        "✖️ Hủy",
    ]
    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #1" in sent.text

    # A second tip, left as it is, does keep the way back to its sender.
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Khu phố 3")
    await resident.says(PLACE)
    await resident.says(WHAT)
    await resident.taps("⏭ Bỏ qua")
    await resident.taps("✅ Gửi tin")
    assert [link.tip_id for link in await rows(runtime, ContactLink)] == [2]


# What no column should receive (found by tests/test_fuzz.py)


async def test_control_characters_are_dropped_and_the_tip_is_sent(
    resident: Person, officers: Group, runtime: Runtime
) -> None:
    # PostgreSQL refuses NUL in text: the tip could never be sent, every tap an apology.
    await to_files_step(resident, "Có\x00 người\x07 bán\x1b[31m ở\u202e ngõ\r\n7\tđêm")
    await resident.taps("⏭ Bỏ qua")
    sent = await resident.taps("✅ Gửi tin")
    assert "Đã gửi tin #1" in sent.text
    [tip] = await rows(runtime, Tip)
    assert tip.text == "Có người bán[31m ở\u202e ngõ\r\n7\tđêm"
    assert "Có người bán[31m" in (await officers.sees()).text


async def test_a_file_name_and_type_longer_than_their_columns_are_cut(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await to_files_step(resident)
    name, kind = "bằng-chứng-" * 40 + ".pdf", "application/" + "x" * 200
    await emulator.send_document(resident.user, b"%PDF-1.4", file_name=name, mime_type=kind)
    await resident.sees()
    await resident.taps("✅ Xong (1 tệp)")
    assert "Đã gửi tin #1" in (await resident.taps("✅ Gửi tin")).text
    [attachment] = await rows(runtime, TipAttachment)
    assert (attachment.file_name, attachment.mime_type) == (name[:256], kind[:128])


async def test_a_file_handle_longer_than_its_column_is_not_taken(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await to_files_step(resident)
    before = await draft(runtime)
    message = {
        "message_id": 99,
        "date": 1,
        "chat": {"id": resident.chat_id, "type": "private"},
        "from": resident.user.to_json(),
        "document": {"file_id": "F" * 257, "file_unique_id": "u"},
    }
    emulator.inject_update({"message": message})
    assert (await resident.sees()).text.startswith(UNSUPPORTED)
    assert await draft(runtime) == before
