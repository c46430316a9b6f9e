"""The month's awareness broadcast per ward: created once, caught up after downtime.

Nothing is sent here: the rows are picked up by the delivery engine.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from broadcasts import engine
from broadcasts.content import PackError, compose, load_pack, next_message
from handlers.context import Services
from handlers.settings import Settings
from storage.db import unit_of_work
from storage.models import Broadcast, BroadcastStatus

log = logging.getLogger(__name__)


def month_of(settings: Settings, now: datetime) -> str:
    """Return the month ("2026-11") that ``now`` falls in, in the wards' time zone."""
    return now.astimezone(settings.bot.tz).strftime("%Y-%m")


def scheduled_time(settings: Settings, now: datetime) -> datetime | None:
    """Return when this month's broadcast is due by ``[broadcasts] schedule``, if it is."""
    tz = settings.bot.tz
    local = now.astimezone(tz)
    start = datetime(local.year, local.month, 1, tzinfo=tz)
    trigger = CronTrigger.from_crontab(settings.broadcasts.schedule, timezone=tz)
    due: datetime | None = trigger.get_next_fire_time(None, start)
    if due is None or (due.year, due.month) != (local.year, local.month):
        return None
    return due


async def monthly_broadcasts(
    services: Services, now: datetime, *, pinned: Mapping[str, str] | None = None
) -> list[int]:
    """Create this month's broadcast for every ward that has none; return the new ids.

    Each takes the ward's next unsent pack message, or the one ``pinned`` to the month.
    The unique (month, ward) row makes a second run, in this process or another, a no-op.
    """
    settings = services.settings
    month = month_of(settings, now)
    pack = load_pack()
    created: list[int] = []
    for ward in settings.wards:
        try:
            async with unit_of_work(services.sessions) as session:
                existing = await session.exec(
                    select(Broadcast.id).where(
                        col(Broadcast.month) == month, col(Broadcast.ward_code) == ward.code
                    )
                )
                if existing.first() is not None:
                    continue
                sent = await session.exec(
                    select(Broadcast.pack_key)
                    .where(
                        col(Broadcast.ward_code) == ward.code,
                        col(Broadcast.month).is_not(None),
                        col(Broadcast.pack_key).is_not(None),
                    )
                    .order_by(col(Broadcast.month), col(Broadcast.id))
                )
                used = [key for key in sent.all() if key is not None]
                try:
                    message = next_message(used, month, pinned, pack=pack)
                except PackError as error:
                    # A wrong pin must not cost the month its message.
                    log.error("%s; sending the next unsent message instead", error)
                    message = next_message(used, month, pack=pack)
                broadcast = Broadcast(
                    month=month,
                    pack_key=message.key,
                    text=compose(
                        message, ward, settings.bot.language, catalogue=services.catalogue
                    ),
                    image=message.image,
                    ward_code=ward.code,
                    status=BroadcastStatus.SCHEDULED,
                    scheduled_at=now,
                )
                session.add(broadcast)
                await session.flush()
                assert broadcast.id is not None
                created.append(broadcast.id)
        except IntegrityError:
            # Another process created the same month's row first: that one stands.
            log.info("Broadcast for %s in ward %s already created elsewhere", month, ward.code)
            continue
        log.info(
            "Broadcast #%d (%s) created for %s in ward %s",
            created[-1],
            message.key,
            month,
            ward.code,
        )
    return created


async def catch_up(
    services: Services, now: datetime, *, pinned: Mapping[str, str] | None = None
) -> list[int]:
    """Create this month's broadcasts missed while the bot was down, once their time passed."""
    due = scheduled_time(services.settings, now)
    if due is None or now < due:
        return []
    created = await monthly_broadcasts(services, now, pinned=pinned)
    if created:
        log.info("Caught up %d broadcast(s) due at %s", len(created), due.isoformat())
    return created


async def send_created(services: Services, created: list[int]) -> None:
    """Deliver the broadcasts just created, one after another (they share the rate)."""
    for broadcast_id in created:
        await engine.send(services, broadcast_id)


async def run_monthly(services: Services) -> None:
    """The cron job: create this month's broadcasts and deliver them."""
    pinned = services.settings.broadcasts.pinned
    await send_created(
        services, await monthly_broadcasts(services, services.clock(), pinned=pinned)
    )


async def run_at_start(services: Services) -> None:
    """At start: finish broadcasts a stopped process left running, then catch up the month.

    Catching up reads the database, not APScheduler's misfire handling, so a month missed
    while the bot was down is sent once, and never twice.
    """
    await engine.resume(services)
    pinned = services.settings.broadcasts.pinned
    await send_created(services, await catch_up(services, services.clock(), pinned=pinned))


async def send_this_month(services: Services) -> int:
    """Deliver this month's message now, to every subscriber who has not had it; return how many.

    For the playground's button and a demo: the month's row is created if it is missing,
    and subscribers who joined since it went out get it too (the outbox adds only them).
    """
    now = services.clock()
    await monthly_broadcasts(services, now, pinned=services.settings.broadcasts.pinned)
    async with unit_of_work(services.sessions) as session:
        found = await session.exec(
            select(Broadcast.id).where(
                col(Broadcast.month) == month_of(services.settings, now),
                col(Broadcast.status).not_in([BroadcastStatus.CANCELLED, BroadcastStatus.DRAFT]),
            )
        )
        ids = [broadcast_id for broadcast_id in found.all() if broadcast_id is not None]
    sent = 0
    for broadcast_id in ids:
        sent += (await engine.send(services, broadcast_id)).sent
    return sent
