"""Retention: closed tips lose the way back to their sender, then their words; by the clock."""

from __future__ import annotations

from sqlmodel import select

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from chat import Group, Officer, Person
from conftest import FakeClock
from handlers import retention
from storage.db import unit_of_work
from storage.models import ContactLink, Throttle, Tip, TipAttachment, TipEvent, TipMessage
from tests_support import send_tip, send_tip_with_conversation

TEXT = "Tối nào cũng có người bán hàng ở quán nước"


async def send_and_close(resident: Person, officers: Group) -> tuple[str, Officer]:
    """A tip with a photo, a question and its answer, then marked dealt with."""
    receipt, card, officer = await send_tip_with_conversation(
        resident, officers, text=TEXT, place="Quán nước đầu ngõ 12"
    )
    edits = card.edits
    await officer.taps_and_reads(card, "📌 Trạng thái")
    await resident.emulator.wait_until(lambda _: card.edits > edits)
    await officer.taps_and_reads(card, "Đã xử lý")
    await resident.sees()  # told the tip was dealt with
    return receipt, officer


async def rows(runtime: Runtime) -> tuple[Tip, int, int, int, list[TipEvent]]:
    """The tip, its contact links, attachments and messages, and its audit trail."""
    async with unit_of_work(runtime.services.sessions) as session:
        tip = (await session.exec(select(Tip))).one()
        links = len((await session.exec(select(ContactLink))).all())
        files = len((await session.exec(select(TipAttachment))).all())
        messages = len((await session.exec(select(TipMessage))).all())
        events = list((await session.exec(select(TipEvent))).all())
    return tip, links, files, messages, events


async def test_the_contact_link_goes_after_30_days_and_the_words_after_a_year(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    receipt, _ = await send_and_close(resident, officers)
    services = runtime.services

    async with unit_of_work(services.sessions) as session:
        assert len((await session.exec(select(Throttle))).all()) == 2
    clock.advance(days=29)
    purged = await retention.purge_closed(services)
    assert (purged.contact_links, purged.tips, purged.counters) == (0, 0, 2)
    assert (await rows(runtime))[1] == 1

    clock.advance(days=1, seconds=1)
    purged = await retention.purge_closed(services)
    assert (purged.contact_links, purged.tips) == (1, 0)
    tip, links, files, messages, _ = await rows(runtime)
    assert (links, files, messages) == (0, 1, 2) and tip.text == TEXT

    clock.advance(days=335)
    purged = await retention.purge_closed(services)
    assert purged.tips == 1
    tip, links, files, messages, events = await rows(runtime)
    # The statistics row stays; what the resident reported is gone.
    assert (tip.category.value, tip.area, tip.status.value) == ("dealing", "Khu phố 3", "resolved")
    assert (tip.text, tip.place, tip.latitude, tip.purged_at) == ("", None, None, clock())
    assert (files, messages) == (0, 0)
    assert [e.action for e in events] == ["ask", "answer", "status"]
    assert all(e.detail is None for e in events)
    assert (await retention.purge_closed(services)).tips == 0  # once only
    async with unit_of_work(services.sessions) as session:
        # The tip's abuse counters (tips per hour and day) went with the first run after 2 days.
        assert (await session.exec(select(Throttle))).all() == []

    # The receipt still tells the resident what became of the tip, without the words.
    found = await resident.says(f"/tracuu {receipt}")
    assert "Tin #1" in found.content and "Đã xử lý" in found.content
    assert "9 giờ" not in found.content


async def test_an_open_tip_is_never_purged(
    resident: Person, officers: Group, runtime: Runtime, clock: FakeClock
) -> None:
    await send_tip(resident, TEXT)
    await officers.sees()
    clock.advance(days=800)
    purged = await retention.purge_closed(runtime.services)
    assert (purged.contact_links, purged.tips) == (0, 0)
    tip, links, *_ = await rows(runtime)
    assert tip.text == TEXT and links == 1


async def test_the_resident_deletes_the_contact_link_from_lookup(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
) -> None:
    receipt, officer = await send_and_close(resident, officers)
    found = await resident.says(f"/tracuu {receipt}")
    assert "🔒 Không nhận câu hỏi nữa" in found.button_labels()
    confirm = await resident.taps("🔒 Không nhận câu hỏi nữa")
    assert "cán bộ không thể hỏi thêm" in confirm.content
    assert confirm.button_labels() == ["✅ Xóa đường liên lạc", "◀️ Giữ lại"]
    done = await resident.taps("✅ Xóa đường liên lạc")
    assert done.content.startswith("🔒 Đã xóa đường liên lạc của tin #1.")
    _, links, *_, events = await rows(runtime)
    assert links == 0 and events[-1].action == "contact_deleted"
    assert events[-1].actor_id is None

    # The card says so at once, and the officers can no longer ask.
    card = officers.messages()[0]
    await emulator.wait_until(lambda _: "🔕 Người báo tin không muốn được liên hệ" in card.text)
    assert "Người báo tin đã xóa đường liên lạc" in card.text
    notice, alert = await officer.taps_and_reads(card, "❓ Hỏi người báo tin")
    assert alert and "không cho phép liên hệ" in notice
    # A second lookup no longer offers the button.
    again = await resident.says(f"/tracuu {receipt}")
    assert "🔒 Không nhận câu hỏi nữa" not in again.button_labels()


async def test_a_forged_or_borrowed_forget_button_does_nothing(
    resident: Person,
    officers: Group,
    emulator: BotApiEmulator,
    runtime: Runtime,
) -> None:
    receipt, _ = await send_and_close(resident, officers)
    found = await resident.says(f"/tracuu {receipt}")
    [data] = [
        button["callback_data"]
        for row in found.raw["reply_markup"]["inline_keyboard"]
        for button in row
        if button["text"] == "🔒 Không nhận câu hỏi nữa"
    ]
    # The same button data pressed in another chat: its tag is not that chat's.
    stranger = Person(emulator, emulator.add_user(user_id=5550009999, first_name="Người lạ"))
    own = await stranger.says("/start")
    await emulator.click_data(stranger.user, own, data.replace("forget", "forgetok"))
    answer = await stranger.sees()
    assert "Đã xóa đường liên lạc" not in answer.content
    forged = data.replace("forget:1:", "forgetok:1:0")[:64]
    await emulator.click_data(resident.user, found, forged)
    await resident.sees()
    assert (await rows(runtime))[1] == 1  # the contact link is still there
