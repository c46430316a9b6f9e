"""Xóa dấu vết: the resident has the bot delete their chat with it from their phone."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from bot.app import Runtime
from bot.emulator import BotApiEmulator, EmuMessage
from chat import Group, Officer, Person
from conftest import GROUP_ID, OFFICER_ID, FakeClock
from handlers import traces
from storage.db import unit_of_work
from storage.models import ChatTrace, Tip
from tests_support import MENU_BUTTONS, send_tip

BUTTON = "🧹 Xóa dấu vết"
CONFIRM = "🧹 Xóa ngay"
KEEP = "↩️ Không xóa"
ASK_LINES = (
    "Bot sẽ xóa đoạn chat giữa bạn và bot trong 48 giờ qua: tin bạn gửi, tin bot trả lời và cả"
    " tin nhắn này. Tin bị xóa trên mọi máy bạn dùng Telegram.",
    "⚠️ Muốn tra cứu tin sau này thì hãy chép mã biên nhận 16 số ra giấy trước",
    "Bot KHÔNG xóa được:",
    "• tin nhắn cũ hơn 48 giờ (Telegram không cho bot xóa);",
    "• chính cuộc trò chuyện trong danh sách chat: bạn tự xóa bằng cách giữ ngón tay lên cuộc"
    " trò chuyện với bot rồi bấm 🗑 (iPhone: vuốt sang trái rồi bấm Xóa);",
    "• thông báo tin nhắn đã hiện trên màn hình, ảnh chụp màn hình;",
    "• những gì Telegram tự lưu: Telegram vẫn biết bạn đã dùng bot này.",
)
DONE = (
    "🧹 Đã xóa {count} tin nhắn. Tin cũ hơn 48 giờ thì còn lại. Để xóa cả cuộc trò chuyện:"
    " giữ ngón tay lên nó trong danh sách chat rồi bấm 🗑."
)


@pytest.fixture(autouse=True)
def telegram_time(emulator: BotApiEmulator, clock: FakeClock) -> None:
    """Telegram dates messages by the test's clock, so its 48 hours pass when the clock moves."""
    emulator.world.clock = lambda: clock.now.timestamp()


async def confirm(resident: Person, message: EmuMessage) -> dict[str, object]:
    """Tap «Xóa ngay» and return how the bot answered the tap, once it is done."""
    emulator = resident.emulator
    query = await emulator.click(resident.user, message, CONFIRM)
    await emulator.wait_until(
        lambda emu: any(a["callback_query_id"] == query for a in emu.callback_answers)
    )
    await resident.settle()
    [answer] = [a for a in emulator.callback_answers if a["callback_query_id"] == query]
    return answer


def left(resident: Person) -> list[EmuMessage]:
    """The messages still in the resident's chat, both sides."""
    return [m for m in resident.emulator.messages(resident.chat_id) if not m.deleted]


def deletion_requests(emulator: BotApiEmulator) -> list[tuple[int, list[int]]]:
    """Every deleteMessages and deleteMessage call: the chat and the message ids."""
    calls = emulator.calls_to("deleteMessages") + emulator.calls_to("deleteMessage")
    return [
        (call.params["chat_id"], call.params.get("message_ids") or [call.params["message_id"]])
        for call in calls
    ]


async def rows(runtime: Runtime) -> list[ChatTrace]:
    """Every row of the traces table."""
    async with unit_of_work(runtime.services.sessions) as session:
        return list((await session.exec(select(ChatTrace))).all())


def key_of(runtime: Runtime, chat_id: int) -> str:
    """The traces table's key for a chat."""
    return traces.trace_key(runtime.services, "telegram", str(chat_id))


async def test_after_a_tip_the_resident_clears_both_sides_and_keeps_the_receipt(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    receipt = await send_tip(resident)
    card = await officers.sees()
    receipt_message = resident.last_with(BUTTON)
    assert "Mã biên nhận của bạn:" in receipt_message.text
    assert receipt_message.button_labels() == [BUTTON, *MENU_BUTTONS]

    ask = await resident.taps(BUTTON)
    assert ask.text.startswith("🧹 Xóa dấu vết\n\n")
    for line in ASK_LINES:
        assert line in ask.text
    assert ask.button_labels() == [CONFIRM, KEEP]
    before = emulator.messages(resident.chat_id)
    assert {m.from_bot for m in before} == {True, False}  # the resident typed, the bot answered

    answer = await confirm(resident, ask)

    assert answer["text"] == DONE.format(count=len(before))
    assert answer["show_alert"]
    assert left(resident) == []
    assert emulator.messages(resident.chat_id) == before  # nothing new left behind
    assert deletion_requests(emulator) == [
        (resident.chat_id, [m.message_id for m in before]),
    ]
    assert [m.deleted for m in emulator.messages(GROUP_ID)] == [False]
    assert officers.messages() == [card]
    assert await rows(runtime) == []

    found = await resident.says(f"/tracuu {receipt}")
    assert found.text.startswith("🔎 Tin #1, gửi lúc 08:10 23/11/2026")


async def test_messages_past_48_hours_are_not_tried_and_the_resident_is_told(
    resident: Person, officers: Group, emulator: BotApiEmulator, clock: FakeClock, runtime: Runtime
) -> None:
    await send_tip(resident)
    await officers.sees()
    old = emulator.messages(resident.chat_id)
    clock.advance(hours=49)
    await resident.says("/start")
    await resident.taps("🔒 Quyền riêng tư")
    ask = await resident.taps(BUTTON)
    assert "• tin nhắn cũ hơn 48 giờ (Telegram không cho bot xóa);" in ask.text
    recent = emulator.messages(resident.chat_id)[len(old) :]

    answer = await confirm(resident, ask)

    assert answer["text"] == DONE.format(count=len(recent))
    assert "Tin cũ hơn 48 giờ thì còn lại." in str(answer["text"])
    assert left(resident) == old
    tried = {i for _, ids in deletion_requests(emulator) for i in ids}
    assert tried == {m.message_id for m in recent}
    assert await rows(runtime) == []  # the old ids are forgotten, not kept for ever


async def test_a_refusal_is_tolerated_and_a_typed_retry_deletes_the_rest(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await send_tip(resident)
    await officers.sees()
    [typed_start, welcome, *_] = emulator.messages(resident.chat_id)
    welcome.deleted = True  # the resident already deleted this one themselves
    refused = "Bad Request: message can't be deleted"
    emulator.fail("deleteMessages", error_code=400, description=refused)
    emulator.fail("deleteMessage", error_code=400, description=refused)
    ask = await resident.taps(BUTTON)
    before = emulator.messages(resident.chat_id)

    answer = await confirm(resident, ask)

    assert answer["text"] == (
        f"🧹 Đã xóa {len(before) - 1} tin nhắn; 1 tin chưa xóa được. Gõ /xoadauvet để thử lại,"
        " hoặc giữ ngón tay lên cuộc trò chuyện rồi bấm 🗑."
    )
    assert left(resident) == [typed_start]
    # The refused batch was retried one message at a time.
    assert [len(ids) for _, ids in deletion_requests(emulator)] == [len(before)] + [1] * len(
        before
    )
    assert [row.message_id for row in await rows(runtime)] == [str(typed_start.message_id)]

    again = await resident.says("/xoadauvet")
    assert again.button_labels() == [CONFIRM, KEEP]
    typed = await resident.send("xoa ngay")  # typed, without diacritics
    await emulator.wait_until(lambda _: typed.deleted)
    await resident.settle()
    assert left(resident) == []
    assert len(emulator.messages(resident.chat_id)) == len(before) + 3  # no message left after
    assert await rows(runtime) == []


async def test_the_label_typed_without_diacritics_asks_and_keep_changes_nothing(
    resident: Person, emulator: BotApiEmulator
) -> None:
    await resident.says("/start")
    ask = await resident.says("xoa dau vet")
    assert ask.text.startswith("🧹 Xóa dấu vết\n\n")
    kept = await resident.says("khong xoa")
    assert kept.text == "Không xóa gì.\n\nBạn muốn làm gì? Bấm một nút bên dưới."
    assert kept.button_labels() == MENU_BUTTONS
    assert len(left(resident)) == 6
    assert deletion_requests(emulator) == []
    # Once something else was done, "1" is no longer an answer to the question.
    welcome = await resident.says("1")
    assert welcome.text.startswith("🏮 Hòm thư tố giác ma túy")
    assert deletion_requests(emulator) == []


async def test_a_long_chat_goes_in_batches_of_100(
    resident: Person, emulator: BotApiEmulator, runtime: Runtime, clock: FakeClock
) -> None:
    for n in range(55):
        if n % 10 == 0:
            clock.advance(minutes=1)  # under the messages-per-minute limit
        await resident.says(f"chào bot lần {n}")
    ask = await resident.says("/xoadauvet")

    answer = await confirm(resident, ask)

    assert answer["text"] == DONE.format(count=112)
    assert [len(ids) for _, ids in deletion_requests(emulator)] == [100, 12]
    assert left(resident) == []


async def test_only_private_chats_are_recorded_and_never_by_their_id(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    await send_tip(resident)
    card = await officers.sees()
    officer = Officer(emulator, emulator.add_user(OFFICER_ID, "Nguyễn Văn", "Cán"), officers)
    await officer.taps_and_reads(card, "✋ Nhận xử lý")
    accepted = await resident.sees()  # the status notice, sent from the officers' side
    await officer.taps_and_reads(card, "❓ Hỏi người báo tin")
    prompt = await officers.sees()
    await officer.replies(prompt, "Họ thường bán vào mấy giờ?")
    question = await resident.sees()
    await officers.sees()
    await emulator.send_text(officer.user, "Để tôi xem", chat=GROUP_ID)
    await resident.settle()

    recorded = await rows(runtime)
    chat = emulator.messages(resident.chat_id)
    assert {row.trace_key for row in recorded} == {key_of(runtime, resident.chat_id)}
    assert sorted(int(row.message_id) for row in recorded) == [m.message_id for m in chat]
    assert {accepted.message_id, question.message_id} <= {m.message_id for m in chat}
    assert key_of(runtime, GROUP_ID) not in {row.trace_key for row in recorded}

    # A row names no chat and no tip: a keyed hash of its own, an id, an hour.
    async with unit_of_work(runtime.services.sessions) as session:
        columns = await session.run_sync(
            lambda sync: [c["name"] for c in inspect(sync.connection()).get_columns("chat_traces")]
        )
        [tip] = (await session.exec(select(Tip))).all()
    assert columns == ["trace_key", "message_id", "hour"]
    dump = repr([(row.trace_key, row.message_id, row.hour) for row in recorded])
    for secret in (str(resident.user.id), str(GROUP_ID), tip.sender_tag or "?", "tran_van"):
        assert secret not in dump
    assert {row.hour.minute for row in recorded} == {0} and tip.created_at.minute == 10


async def test_the_purge_keeps_nothing_past_48_hours(
    resident: Person, clock: FakeClock, runtime: Runtime
) -> None:
    await resident.says("/start")
    clock.advance(hours=47)
    await resident.says("/start")
    assert await traces.purge(runtime.services) == 0
    assert len(await rows(runtime)) == 4
    clock.advance(hours=1)  # the first two messages are 48 hours old now
    assert await traces.purge(runtime.services) == 2
    assert sorted(row.message_id for row in await rows(runtime)) == ["3", "4"]
