"""The welcome, the main menu, hotlines, privacy and language, and the officers' /chatid."""

from __future__ import annotations

from bot.emulator import BotApiEmulator
from chat import Group, Person
from conftest import GROUP_ID, OFFICER_ID, OTHER_GROUP_ID
from tests_support import MENU_BUTTONS

INFO = "\u2139\ufe0f"  # the "information" emoji, escaped: ruff flags it as a letter
PHOTO = b"\xff\xd8\xff\xe0" + b"fake-jpeg-body" * 20
MENU = "Bạn muốn làm gì? Bấm một nút bên dưới."
ENGLISH_BUTTONS = [
    "📝 Send a tip",
    "🔎 Check a tip I sent",
    "📬 Monthly awareness messages",
    "📞 Hotlines",
    "🔒 Privacy",
    "🌐 Tiếng Việt",
]
WELCOME = f"""🏮 Hòm thư tố giác ma túy · Phường Đông Cương

Bạn có thể báo tin về ma túy mà không cần nói mình là ai.
🔒 Cán bộ nhận tin KHÔNG thấy tên, tên tài khoản, số điện thoại hay ảnh đại diện của bạn.
{INFO} Telegram vẫn biết tài khoản của bạn có dùng bot này.

Khi có việc nguy hiểm ngay, hãy gọi:
📞 Cảnh sát 113: 113
📞 Công an phường: 0237 3 123 456

Bấm một nút bên dưới để bắt đầu."""
ENGLISH_WELCOME = "🏮 Drug tip box · Phường Đông Cương"


async def test_start_shows_the_welcome_with_the_hotlines(resident: Person) -> None:
    welcome = await resident.says("/start")
    assert welcome.text == WELCOME
    assert welcome.button_labels() == MENU_BUTTONS


async def test_any_first_text_gets_the_welcome(resident: Person) -> None:
    welcome = await resident.says("xin chào, tôi muốn báo tin")
    assert welcome.text == WELCOME
    assert welcome.button_labels() == MENU_BUTTONS


async def test_help_and_menu_commands_show_the_welcome(resident: Person) -> None:
    assert (await resident.says("/help")).text == WELCOME
    assert (await resident.says("/menu")).text == WELCOME


async def test_the_hotlines_screen_lists_the_configured_numbers(resident: Person) -> None:
    await resident.says("/start")
    hotlines = await resident.taps("📞 Đường dây nóng")
    assert hotlines.text == (
        "📞 Đường dây nóng (gọi ngay khi có việc nguy hiểm):\n"
        "📞 Cảnh sát 113: 113\n"
        "📞 Công an phường: 0237 3 123 456\n"
        "\n"
        "Gọi điện thì cán bộ có thể biết số máy của bạn. Muốn giữ kín, hãy gửi tin qua bot."
    )
    assert hotlines.button_labels() == MENU_BUTTONS


async def test_the_privacy_screen_says_what_stays_hidden_and_what_does_not(
    resident: Person,
) -> None:
    await resident.says("/start")
    privacy = await resident.taps("🔒 Quyền riêng tư")
    assert privacy.text.startswith("🔒 Quyền riêng tư\n")
    assert (
        "Họ KHÔNG thấy tên, tên tài khoản, số điện thoại hay ảnh đại diện của bạn." in privacy.text
    )
    assert "Tin nhắn với bot không được mã hóa đầu cuối." in privacy.text
    assert "Mã biên nhận 16 số chỉ bạn giữ." in privacy.text
    assert "Bấm «🧹 Xóa dấu vết» để bot xóa tin nhắn 48 giờ qua." in privacy.text
    assert "Nội dung tin được mã hóa khi lưu." in privacy.text
    assert "tự xóa 30 ngày sau khi tin xử lý xong" in privacy.text
    assert privacy.button_labels() == ["🧹 Xóa dấu vết", *MENU_BUTTONS]
    assert (await resident.says("/riengtu")).text == privacy.text


async def test_english_switches_the_welcome_and_stays(resident: Person) -> None:
    await resident.says("/start")
    english = await resident.taps("🌐 English")
    assert english.text.startswith(f"{ENGLISH_WELCOME}\n\nYou can report drug activity")
    assert "📞 Cảnh sát 113: 113" in english.text
    assert english.button_labels() == ENGLISH_BUTTONS

    # Later messages stay English although Telegram says the resident's phone is Vietnamese.
    assert (await resident.says("hello")).text.startswith(ENGLISH_WELCOME)
    assert (await resident.says("/start")).text.startswith(ENGLISH_WELCOME)
    tip = await resident.taps("📝 Send a tip")
    assert "Step 1/5\nWhat is the tip about?" in tip.text
    await resident.says("/huy")

    vietnamese = await resident.taps("🌐 Tiếng Việt")
    assert vietnamese.text == WELCOME
    assert (await resident.says("/start")).text == WELCOME


async def test_a_resident_whose_telegram_is_english_gets_english(
    emulator: BotApiEmulator, runtime: object
) -> None:
    user = emulator.add_user(5550002222, "Sam", language_code="en")
    sam = Person(emulator, user)
    welcome = await sam.says("/start")
    assert welcome.text.startswith(ENGLISH_WELCOME)
    assert "Officers who read tips do NOT see your name" in welcome.text
    assert welcome.button_labels() == ENGLISH_BUTTONS


async def test_a_resident_with_another_language_gets_vietnamese(
    emulator: BotApiEmulator, runtime: object
) -> None:
    user = emulator.add_user(5550003333, "Jean", language_code="fr")
    assert (await Person(emulator, user).says("/start")).text == WELCOME


async def test_a_photo_while_idle_says_to_start_a_tip_first(
    resident: Person, emulator: BotApiEmulator
) -> None:
    await emulator.send_photo(resident.user, PHOTO)
    hint = await resident.sees()
    assert hint.text == (
        f"Để gửi ảnh, tệp hay vị trí kèm tin, hãy bấm «📝 Gửi tin tố giác» trước.\n\n{MENU}"
    )
    assert hint.button_labels() == MENU_BUTTONS


async def test_a_location_or_file_while_idle_says_to_start_a_tip_first(
    resident: Person, emulator: BotApiEmulator
) -> None:
    await emulator.send_location(resident.user, 21.5942, 105.8482)
    location = await resident.sees()
    await emulator.send_document(resident.user, b"%PDF-1.4", file_name="a.pdf")
    document = await resident.sees()
    assert location.text == document.text
    assert location.text.startswith("Để gửi ảnh, tệp hay vị trí kèm tin, hãy bấm")


async def test_a_sticker_while_idle_says_what_the_bot_accepts(
    resident: Person, emulator: BotApiEmulator
) -> None:
    await emulator.send_sticker(resident.user)
    answer = await resident.sees()
    assert answer.text == (
        "Bot chỉ nhận chữ, ảnh, video, ghi âm, tệp và vị trí. Nhãn dán, danh bạ hay số điện "
        f"thoại không cần gửi: tin là ẩn danh.\n\n{MENU}"
    )
    assert answer.button_labels() == MENU_BUTTONS


async def test_an_unknown_command_gets_a_hint_and_the_menu(resident: Person) -> None:
    answer = await resident.says("/abcxyz")
    assert answer.text == f"Bot không hiểu lệnh này.\n\n{MENU}"
    assert answer.button_labels() == MENU_BUTTONS
    # /chatid is for the officers' group only.
    assert (await resident.says("/chatid")).text == answer.text


async def test_chatid_in_the_officers_group_answers_the_group_id(
    emulator: BotApiEmulator, officers: Group
) -> None:
    officer = emulator.add_user(OFFICER_ID, "Cán bộ", language_code="vi")
    await emulator.send_text(officer, "Chào anh em", chat=GROUP_ID)
    await emulator.send_command(officer, "/start", chat=GROUP_ID)
    await emulator.send_command(officer, "/chatid", chat=GROUP_ID)
    answer = await officers.sees()
    assert answer.text == (
        f"ID của nhóm này: {GROUP_ID}. Ghi số này vào officer_chat_id trong config.toml."
    )
    # Chatter and /start in the group got no answer: the only message is the id.
    assert officers.messages() == [answer]


async def test_chatid_addressed_to_the_bot_works_and_to_another_bot_is_ignored(
    emulator: BotApiEmulator, officers: Group
) -> None:
    officer = emulator.add_user(OFFICER_ID, "Cán bộ", language_code="vi")
    await emulator.send_command(officer, "/chatid@other_bot", chat=GROUP_ID)
    await emulator.send_command(officer, "/chatid@homthu_test_bot", chat=GROUP_ID)
    answer = await officers.sees()
    assert answer.text.startswith(f"ID của nhóm này: {GROUP_ID}.")
    assert officers.messages() == [answer]


async def test_chatid_answers_in_a_group_not_yet_configured(
    emulator: BotApiEmulator, runtime: object
) -> None:
    new_group = Group(emulator, emulator.add_group(OTHER_GROUP_ID, "Nhóm mới"))
    officer = emulator.add_user(OFFICER_ID, "Cán bộ", language_code="vi")
    await emulator.send_command(officer, "/chatid", chat=OTHER_GROUP_ID)
    answer = await new_group.sees()
    assert answer.text.startswith(f"ID của nhóm này: {OTHER_GROUP_ID}.")
