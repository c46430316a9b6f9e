"""The plans' KPI in /stats: how many subscribers of each area the month's message reached."""

from __future__ import annotations

from broadcast_support import add_broadcast, subscribe

from bot.app import Runtime
from bot.emulator import BotApiEmulator
from broadcasts import engine
from chat import Group, Officer
from conftest import OFFICER_ID


async def test_stats_show_the_share_of_subscribers_reached_per_area(
    runtime: Runtime, officers: Group, emulator: BotApiEmulator
) -> None:
    services = runtime.services
    reached = [5550010000 + n for n in range(3)]
    for chat_id in reached:
        emulator.add_user(chat_id, f"Cư dân {chat_id}")
    now = services.clock()
    await subscribe(services.sessions, services.keyring, reached, now, area="Khu phố 1")
    summary = await engine.send(services, await add_broadcast(services))
    assert summary.sent == 3
    await subscribe(services.sessions, services.keyring, [5550020000], now, area="Khu phố 2")

    officer = Officer(emulator, emulator.add_user(OFFICER_ID, "Cán bộ"), officers)
    await emulator.send_command(officer.user, "/stats", chat=officers.chat_id)
    stats = await officers.sees()
    assert stats.text.endswith(
        "📬 Tin tuyên truyền tháng này (người đăng ký đã nhận):\n"
        "• Khu phố 1: 3/3 (100%)\n"
        "• Khu phố 2: 0/1 (0%)"
    )
