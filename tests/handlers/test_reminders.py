"""The group is reminded of unclaimed urgent tips, and told each morning what is getting old."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from chat import Group, Officer, Person
from conftest import OFFICER_ID, FakeClock
from handlers.reminders import remind_urgent, send_digest
from storage import queue as queue_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Category, TipBase, TipStatus


@pytest.fixture
def officer(emulator: BotApiEmulator, officers: Group) -> Officer:
    """A ward officer in the group."""
    user = emulator.add_user(user_id=OFFICER_ID, first_name="Nguyễn Văn", last_name="Cán")
    return Officer(emulator, user, officers)


async def urgent_tip(resident: Person, text: str = "Thằng con nhà bên ngáo đá đập phá") -> None:
    """The resident reports someone in psychosis: an urgent tip."""
    await resident.says("/start")
    await resident.taps("📝 Gửi tin tố giác")
    await resident.taps("⚠️ Ngáo đá, loạn thần (nguy hiểm)")
    await resident.taps("Khu phố 3")
    await resident.taps("⏭ Bỏ qua")
    await resident.says(text)
    await resident.taps("⏭ Bỏ qua")
    await resident.taps("✅ Gửi tin")


async def add_tip(
    runtime: Runtime, at: datetime, *, status: TipStatus = TipStatus.NEW, area: str = "Khu phố 2"
) -> int:
    """Store a tip as if it came in and its card was posted at ``at``."""
    async with unit_of_work(runtime.services.sessions) as session:
        tip = await repo.create_tip(
            session=session,
            tip_in=TipBase(
                ward_code="dong-cuong", category=Category.DEN, area=area, text="Có tụ điểm"
            ),
            receipt_hash=secrets.token_hex(32),
            attachments=[],
            contact_sealer=None,
            now=at,
        )
        assert tip.id is not None
        await queue_repo.set_triage(session=session, tip_id=tip.id, priority="high", flags=[])
        await repo.mark_card_posted(session=session, tip_id=tip.id, message_id="1", now=at)
        if status is not TipStatus.NEW:
            await queue_repo.set_status(
                session=session, tip_id=tip.id, status=status, closed=True, now=at, last_action=""
            )
        return tip.id


async def test_an_unclaimed_urgent_tip_rings_again_every_interval(
    resident: Person, officers: Group, runtime: Runtime, clock: FakeClock
) -> None:
    await urgent_tip(resident)
    card = await officers.sees()

    clock.advance(minutes=14, seconds=59)
    assert await remind_urgent(runtime.services) == 0
    clock.advance(seconds=1)
    assert await remind_urgent(runtime.services) == 1
    reminder = await officers.sees()
    assert reminder.text == (
        "⏰ Tin khẩn #1 chưa có ai nhận sau 15 phút. Đề nghị cán bộ trực nhận xử lý ngay."
    )
    assert reminder.reply_to == card.message_id and not reminder.silent

    assert await remind_urgent(runtime.services) == 0  # the job runs every minute
    clock.advance(minutes=14)
    assert await remind_urgent(runtime.services) == 0
    clock.advance(minutes=1)
    assert await remind_urgent(runtime.services) == 1
    again = await officers.sees()
    assert again.text.startswith("⏰ Tin khẩn #1 chưa có ai nhận sau 30 phút.")
    assert len(officers.messages()) == 3


async def test_a_claimed_or_ordinary_tip_is_not_reminded(
    resident: Person, officers: Group, officer: Officer, runtime: Runtime, clock: FakeClock
) -> None:
    await urgent_tip(resident)
    card = await officers.sees()
    await add_tip(runtime, clock.now)  # high, not urgent
    await officer.taps_and_reads(card, "✋ Nhận xử lý")
    clock.advance(hours=2)
    assert await remind_urgent(runtime.services) == 0
    assert len(officers.messages()) == 1


async def test_the_digest_lists_only_tips_open_for_more_than_a_day(
    officers: Group, runtime: Runtime, clock: FakeClock
) -> None:
    now = clock.now
    young = await add_tip(runtime, now - timedelta(hours=23))
    assert await send_digest(runtime.services) == 0
    assert officers.messages() == []

    older = await add_tip(runtime, now - timedelta(hours=30), area="Khu phố 7")
    old = await add_tip(runtime, now - timedelta(hours=25))
    await add_tip(runtime, now - timedelta(hours=50), status=TipStatus.RESOLVED)
    assert await send_digest(runtime.services) == 1
    digest = await officers.sees()
    assert digest.text.splitlines() == [
        "🗓 Tin mở quá 24 giờ · Phường Đông Cương: 2 tin (cũ nhất trước)",
        "",
        f"🟠 #{older} · 🏚 Tụ điểm, nơi chứa chấp · Khu phố 7 · 30 giờ trước · 👮 chưa ai nhận",
        f"🟠 #{old} · 🏚 Tụ điểm, nơi chứa chấp · Khu phố 2 · 25 giờ trước · 👮 chưa ai nhận",
    ]
    assert f"#{young} " not in digest.text
