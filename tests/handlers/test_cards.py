"""Tips reach the officers even when Telegram refuses for a while; nothing is lost."""

from __future__ import annotations

from sqlmodel import select

from bot.app import Runtime, purge_stale_drafts
from bot.emulator import BotApiEmulator
from chat import Group, Person
from conftest import GROUP_ID, FakeClock
from handlers import cards
from pictures import jpeg
from storage.db import unit_of_work
from storage.models import Draft, Tip, TipAttachment
from tests_support import send_tip

PHOTO = jpeg()


async def stored_tips(runtime: Runtime) -> list[Tip]:
    async with unit_of_work(runtime.services.sessions) as session:
        return list((await session.exec(select(Tip))).all())


async def test_a_flood_wait_delays_the_receipt_but_loses_nothing(
    resident: Person, officers: Group, emulator: BotApiEmulator
) -> None:
    emulator.fail("sendMessage", error_code=429, retry_after=1, chat_id=resident.chat_id)
    await resident.says("/start")  # answered after the one-second flood wait
    await send_tip(resident)
    card = await officers.sees()
    assert card.text.startswith("🆕 TIN #1")
    refused = [c for c in emulator.calls_to("sendMessage") if c.status == 429]
    assert len(refused) == 1


async def test_a_card_the_group_refused_is_posted_by_the_retry_job(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    emulator.fail(
        "sendMessage",
        error_code=403,
        description="Forbidden: bot was kicked from the supergroup chat",
        chat_id=GROUP_ID,
    )
    receipt = await send_tip(resident)
    assert len(receipt) == 16  # the resident is answered whatever the group does
    await emulator.wait_until(
        lambda emu: any(c.status == 403 for c in emu.calls_to("sendMessage"))
    )
    [tip] = await stored_tips(runtime)
    assert tip.posted_at is None and officers.messages() == []

    assert await cards.post_pending(runtime.services) == 1  # what the 30-second job runs
    card = await officers.sees()
    assert card.text.startswith("🆕 TIN #1")
    [tip] = await stored_tips(runtime)
    assert tip.card_message_id == str(card.message_id)
    assert await cards.post_pending(runtime.services) == 0  # and never twice
    assert len(officers.messages()) == 1


async def test_an_attachment_that_failed_follows_its_card_later(
    resident: Person, officers: Group, emulator: BotApiEmulator, runtime: Runtime
) -> None:
    emulator.fail("sendPhoto", error_code=403, chat_id=GROUP_ID)
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("💊 Mua bán ma túy")
    await resident.taps("Không rõ")
    await resident.taps("⏭ Bỏ qua")
    await resident.says("Có người bán hàng trắng")
    await emulator.send_photo(resident.user, PHOTO)
    await resident.sees()
    await resident.taps("✅ Xong (1 tệp)")
    await resident.taps("✅ Gửi tin")
    card = await officers.sees()
    await emulator.wait_until(lambda emu: any(c.status == 403 for c in emu.calls_to("sendPhoto")))

    await cards.post_pending(runtime.services)
    photo = await officers.sees()
    assert photo.kind == "photo" and photo.reply_to == card.message_id
    async with unit_of_work(runtime.services.sessions) as session:
        [item] = (await session.exec(select(TipAttachment))).all()
    assert item.posted_message_id == str(photo.message_id)
    assert [m.kind for m in officers.messages()] == ["text", "photo"]


async def test_a_reply_telegram_refuses_keeps_the_draft(
    resident: Person, emulator: BotApiEmulator
) -> None:
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    emulator.fail("sendMessage", error_code=403, chat_id=resident.chat_id)
    await emulator.click(
        resident.user, resident.last_with("💉 Sử dụng ma túy"), "💉 Sử dụng ma túy"
    )
    await emulator.wait_until(
        lambda emu: any(c.status == 403 for c in emu.calls_to("sendMessage"))
    )
    again = await resident.says("/start")
    assert "viết dở" in again.text
    carry_on = await resident.taps("▶️ Viết tiếp")
    assert "Bước 2/5" in carry_on.text  # the category chosen before the failure was kept


async def test_the_retry_job_is_scheduled(runtime: Runtime) -> None:
    job = runtime.scheduler.get_job("repost-cards")
    assert job is not None and job.trigger.interval.total_seconds() == 30


async def test_abandoned_drafts_are_purged_after_their_time(
    resident: Person, runtime: Runtime, clock: FakeClock
) -> None:
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    clock.advance(hours=71)
    assert await purge_stale_drafts(runtime.services) == 0
    clock.advance(hours=2)
    assert await purge_stale_drafts(runtime.services) == 1
    async with unit_of_work(runtime.services.sessions) as session:
        assert (await session.exec(select(Draft))).all() == []
