"""Tra cứu: a resident types their receipt and sees what became of the tip."""

from __future__ import annotations

import pytest

import tests_support
from bot.emulator import BotApiEmulator
from chat import Group, Person
from conftest import FakeClock
from tests_support import MENU_BUTTONS

MENU = "Bạn muốn làm gì? Bấm một nút bên dưới."
ASK = "🔎 Gõ 16 số trong mã biên nhận (có dấu cách cũng được)."
FOUND = (
    "🔎 Tin #1, gửi lúc 08:10 23/11/2026\n"
    "Tình trạng: Mới nhận, đang chờ cán bộ xem\n"
    "Cập nhật lần cuối: 08:10 23/11/2026"
)
NOT_FOUND = "Không tìm thấy tin nào với mã này. Bạn kiểm tra lại 16 số."
BAD_FORMAT = "Mã biên nhận gồm đúng 16 chữ số. Bạn gõ lại nhé."
LOCKED = f"Bạn đã gõ sai nhiều lần. Hãy thử lại sau 1 giờ.\n\n{MENU}"
WELCOME = "🏮 Hòm thư tố giác ma túy · Phường Đông Cương"


async def send_tip(resident: Person, officers: Group) -> str:
    """Send a tip and wait for its card; return the receipt as the resident sees it."""
    receipt = await tests_support.send_tip(resident)
    await officers.sees()
    return " ".join(receipt[i : i + 4] for i in range(0, 16, 4))


def wrong(receipt: str) -> str:
    """The same receipt with its last digit changed: a typo, or a guess."""
    last = receipt[-1]
    return receipt[:-1] + ("0" if last != "0" else "1")


async def test_a_receipt_with_spaces_shows_the_tip(resident: Person, officers: Group) -> None:
    receipt = await send_tip(resident, officers)
    ask = await resident.taps("🔎 Tra cứu tin đã gửi")
    assert ask.text == ASK
    assert ask.button_labels() == ["✖️ Thôi, quay lại"]
    found = await resident.says(receipt)
    assert found.text == FOUND
    assert found.button_labels() == ["🔒 Không nhận câu hỏi nữa", *MENU_BUTTONS]


async def test_a_receipt_without_spaces_shows_the_tip(resident: Person, officers: Group) -> None:
    receipt = await send_tip(resident, officers)
    await resident.taps("🔎 Tra cứu tin đã gửi")
    found = await resident.says(receipt.replace(" ", ""))
    assert found.text == FOUND


async def test_a_receipt_with_dashes_given_to_the_command_shows_the_tip(
    resident: Person, officers: Group
) -> None:
    receipt = await send_tip(resident, officers)
    found = await resident.says(f"/tracuu {receipt.replace(' ', '-')}")
    assert found.text == FOUND
    ask = await resident.says("/tracuu")
    assert ask.text == ASK


async def test_a_wrong_code_and_a_never_issued_one_get_the_same_answer(
    resident: Person, officers: Group
) -> None:
    receipt = await send_tip(resident, officers)
    await resident.taps("🔎 Tra cứu tin đã gửi")
    typo = await resident.says(wrong(receipt))
    never = await resident.says("0000 0000 0000 0000")
    assert typo.text == never.text == NOT_FOUND
    assert typo.button_labels() == never.button_labels() == ["✖️ Thôi, quay lại"]


@pytest.mark.parametrize("typed", ["1234 5678", "1234 5678 9012 3456 7", "mã của tôi"])
async def test_a_code_with_the_wrong_number_of_digits_gets_the_format_hint(
    resident: Person, typed: str
) -> None:
    await resident.says("/start")
    await resident.taps("🔎 Tra cứu tin đã gửi")
    hint = await resident.says(typed)
    assert hint.text == BAD_FORMAT
    assert hint.button_labels() == ["✖️ Thôi, quay lại"]


async def test_badly_formed_codes_do_not_count_as_wrong_guesses(
    resident: Person, officers: Group
) -> None:
    receipt = await send_tip(resident, officers)
    await resident.taps("🔎 Tra cứu tin đã gửi")
    for _ in range(5):
        assert (await resident.says("1234 5678")).text == BAD_FORMAT
    for _ in range(4):
        assert (await resident.says(wrong(receipt))).text == NOT_FOUND
    assert (await resident.says(receipt)).text == FOUND


async def test_five_wrong_codes_lock_lookups_for_an_hour(
    resident: Person, officers: Group, clock: FakeClock
) -> None:
    receipt = await send_tip(resident, officers)
    await resident.taps("🔎 Tra cứu tin đã gửi")
    for _ in range(5):
        assert (await resident.says(wrong(receipt))).text == NOT_FOUND

    locked = await resident.says(receipt)
    assert locked.text == LOCKED
    assert locked.button_labels() == MENU_BUTTONS
    clock.advance(minutes=59)
    assert (await resident.says(receipt)).text == LOCKED

    clock.advance(minutes=1)
    found = await resident.says(receipt)
    assert found.text.startswith("🔎 Tin #1, gửi lúc 08:10 23/11/2026\n")
    assert "Tình trạng: Mới nhận, đang chờ cán bộ xem" in found.text


async def test_the_lock_is_per_resident(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    receipt = await send_tip(resident, officers)
    for _ in range(5):
        await resident.says(wrong(receipt))
    assert (await resident.says(receipt)).text == LOCKED

    neighbour = Person(emulator, emulator.add_user(5550009999, "Lê", language_code="vi"))
    assert (await neighbour.says(receipt)).text == FOUND


async def test_sixteen_bare_digits_while_idle_are_a_lookup(
    resident: Person, officers: Group
) -> None:
    receipt = await send_tip(resident, officers)
    assert (await resident.says(receipt)).text == FOUND
    assert (await resident.says(receipt.replace(" ", ""))).text == FOUND
    # Digits inside a sentence are not a receipt: the resident gets the welcome.
    chat = await resident.says(f"mã {receipt}")
    assert chat.text.startswith(WELCOME)


async def test_thoi_quay_lai_returns_to_the_menu(resident: Person) -> None:
    await resident.says("/start")
    await resident.taps("🔎 Tra cứu tin đã gửi")
    back = await resident.taps("✖️ Thôi, quay lại")
    assert back.text == MENU
    assert back.button_labels() == MENU_BUTTONS
    # No receipt is awaited any more: a greeting gets the welcome, not the format hint.
    assert (await resident.says("xin chào")).text.startswith(WELCOME)


async def test_the_lookup_is_dropped_when_the_resident_goes_back_to_the_menu(
    resident: Person,
) -> None:
    await resident.says("/start")
    await resident.taps("🔎 Tra cứu tin đã gửi")
    welcome = await resident.says("/start")
    assert welcome.text.startswith(WELCOME)
    assert (await resident.says("xin chào")).text.startswith(WELCOME)


async def test_tracuu_in_the_middle_of_a_tip_looks_up_the_typed_receipt(
    resident: Person, officers: Group, runtime: object
) -> None:
    receipt = await send_tip(resident, officers)
    await resident.taps("📝 Gửi tin tố giác")
    ask = await resident.says("/tracuu")
    assert ask.text == ASK
    found = await resident.says(receipt)
    assert found.text == FOUND
