"""The month's broadcast: one per ward and month, the next unsent message, caught up once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import open_services
from bot.config import ConfigError, Settings, load_settings
from broadcasts.schedule import catch_up, monthly_broadcasts, scheduled_time
from conftest import GROUP_ID, OTHER_GROUP_ID, SECRET, ward
from handlers.context import Services
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus

# 08:00 in Vietnam (UTC+7) is 01:00 UTC.
FIRST_OF_DECEMBER_8AM = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def wards() -> list[dict[str, Any]]:
    """Two wards: each gets its own monthly row."""
    return [
        ward("dong-cuong", "Phường Đông Cương", GROUP_ID),
        ward("quang-trung", "Xã Quang Trung", OTHER_GROUP_ID, areas=["Thôn 1", "Thôn 2"]),
    ]


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The services, without the bot: the schedule only writes rows."""
    built = await open_services(settings, secret=SECRET)
    yield built
    await built.sessions.kw["bind"].dispose()


async def broadcasts(services: Services) -> list[Broadcast]:
    """Every broadcast row, in creation order."""
    async with unit_of_work(services.sessions) as session:
        result = await session.exec(select(Broadcast).order_by(col(Broadcast.id)))
        return list(result.all())


async def test_each_ward_gets_one_broadcast_a_month(services: Services) -> None:
    now = FIRST_OF_DECEMBER_8AM
    created = await monthly_broadcasts(services, now)
    assert len(created) == 2
    rows = await broadcasts(services)
    assert [(b.month, b.ward_code, b.pack_key) for b in rows] == [
        ("2026-12", "dong-cuong", "tac-hai"),
        ("2026-12", "quang-trung", "tac-hai"),
    ]
    assert all(b.status is BroadcastStatus.SCHEDULED and b.scheduled_at == now for b in rows)
    assert rows[0].area is None and rows[0].image is None
    assert rows[0].text.startswith("🌿 Tin tuyên truyền tháng này: Ma túy hại người, hại nhà")
    assert "📞 Đường dây nóng · Phường Đông Cương:" in rows[0].text
    assert "📞 Đường dây nóng · Xã Quang Trung:" in rows[1].text
    # Later the same month, and from the last evening of the month: nothing new.
    assert await monthly_broadcasts(services, datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == []
    assert len(await broadcasts(services)) == 2


async def test_the_month_is_the_wards_local_month(services: Services) -> None:
    # 30 November 18:00 UTC is already 1 December in Vietnam.
    await monthly_broadcasts(services, datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    assert {b.month for b in await broadcasts(services)} == {"2026-12"}


async def test_each_month_takes_the_next_unsent_message(services: Services) -> None:
    for month in range(1, 5):
        await monthly_broadcasts(services, datetime(2027, month, 1, 1, 0, tzinfo=UTC))
    rows = [b for b in await broadcasts(services) if b.ward_code == "dong-cuong"]
    assert [(b.month, b.pack_key) for b in rows] == [
        ("2027-01", "tac-hai"),
        ("2027-02", "nhan-biet"),
        ("2027-03", "to-giac"),
        ("2027-04", "phap-luat"),
    ]


async def test_a_pinned_message_goes_out_in_its_month_and_the_order_resumes(
    services: Services,
) -> None:
    pinned = {"2027-02": "toan-dan"}
    for month in range(1, 4):
        now = datetime(2027, month, 1, 1, 0, tzinfo=UTC)
        await monthly_broadcasts(services, now, pinned=pinned)
    rows = [b for b in await broadcasts(services) if b.ward_code == "quang-trung"]
    assert [b.pack_key for b in rows] == ["tac-hai", "toan-dan", "nhan-biet"]


def test_the_scheduled_time_is_eight_on_the_first_by_default(settings: Settings) -> None:
    due = scheduled_time(settings, datetime(2026, 12, 17, 9, 0, tzinfo=UTC))
    assert due == FIRST_OF_DECEMBER_8AM


async def test_catch_up_waits_for_the_scheduled_time_then_runs_once(
    services: Services,
) -> None:
    assert await catch_up(services, datetime(2026, 12, 1, 0, 59, tzinfo=UTC)) == []
    assert await broadcasts(services) == []
    # The bot was down at 08:00 and starts at 08:05: the month's broadcasts are created.
    assert len(await catch_up(services, datetime(2026, 12, 1, 1, 5, tzinfo=UTC))) == 2
    # A restart later that month creates nothing more, and neither does the monthly job.
    assert await catch_up(services, datetime(2026, 12, 20, 3, 0, tzinfo=UTC)) == []
    assert await monthly_broadcasts(services, datetime(2026, 12, 20, 3, 0, tzinfo=UTC)) == []
    assert len(await broadcasts(services)) == 2


async def test_catch_up_does_not_recreate_a_cancelled_month(services: Services) -> None:
    await monthly_broadcasts(services, FIRST_OF_DECEMBER_8AM)
    async with unit_of_work(services.sessions) as session:
        for row in (await session.exec(select(Broadcast))).all():
            row.status = BroadcastStatus.CANCELLED
            session.add(row)
    assert await catch_up(services, datetime(2026, 12, 2, 1, 0, tzinfo=UTC)) == []


def test_the_scheduled_time_follows_the_configured_cron(settings: Settings) -> None:
    custom = settings.model_copy(
        update={"broadcasts": settings.broadcasts.model_copy(update={"schedule": "30 9 5 * *"})}
    )
    due = scheduled_time(custom, datetime(2026, 12, 17, 9, 0, tzinfo=UTC))
    assert due == datetime(2026, 12, 5, 2, 30, tzinfo=UTC)


async def test_a_wrong_pin_still_sends_the_month_its_message(services: Services) -> None:
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    created = await monthly_broadcasts(services, now, pinned={"2026-12": "no-such-message"})
    assert len(created) == 2  # both wards still get the month's message
    async with unit_of_work(services.sessions) as session:
        keys = (await session.exec(select(Broadcast.pack_key))).all()
    assert None not in keys and "no-such-message" not in keys


def test_a_pinned_month_must_be_written_as_a_month(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[broadcasts]\npinned = { "tháng 12" = "tet" }\n'
        '[[wards]]\ncode = "x"\nname = "X"\nofficer_chat_id = -1\nareas = ["A"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert "broadcasts.pinned" in str(raised.value)
    assert "YYYY-MM" in str(raised.value)
