"""Scheduled nudges in the officers' groups: unclaimed urgent tips, and the morning digest."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from handlers.context import Services
from handlers.events import DeliveryError, Outbound
from handlers.officer_commands import Desk, tip_line
from handlers.text import split_text
from storage import reports
from storage.db import unit_of_work

log = logging.getLogger(__name__)

DIGEST_AGE: Final = timedelta(hours=24)
TEXT_LIMIT: Final = 4096


async def remind_urgent(services: Services) -> int:
    """Ring the group again for each urgent tip unclaimed for the interval; return how many.

    An interval counts from the tip's arrival, then from its last reminder. Each reminder is
    stamped before it is sent, so no tip is reminded twice within one interval.
    """
    now = services.clock()
    interval = services.settings.triage.urgent_remind_minutes
    due_before = now - timedelta(minutes=interval)
    async with unit_of_work(services.sessions) as session:
        due = await reports.unclaimed_urgent(session=session, due_before=due_before)
    language = services.settings.bot.language
    channel = services.channel(services.officer_channel)
    sent = 0
    for tip in due:
        assert tip.id is not None
        ward = next((w for w in services.settings.wards if w.code == tip.ward_code), None)
        if ward is None:
            continue
        async with unit_of_work(services.sessions) as session:
            stamped = await reports.mark_reminded(
                session=session, tip_id=tip.id, now=now, due_before=due_before
            )
        if not stamped:
            continue
        minutes = int((now - tip.created_at).total_seconds() // 60)
        text = services.catalogue.text(
            language, "officer.urgent_reminder", number=tip.id, minutes=minutes
        )
        try:
            await channel.send(
                str(ward.officer_chat_id), Outbound(text=text, reply_to=tip.card_message_id)
            )
        except DeliveryError as error:
            log.warning("Reminder for tip #%d not delivered: %s", tip.id, error)
            continue
        sent += 1
    return sent


async def send_digest(services: Services) -> int:
    """Post each ward's tips open for more than a day, oldest first; return how many groups.

    A ward with none gets no message: a daily "nothing" teaches people to skip the digest.
    """
    now = services.clock()
    desk = Desk(services, tuple(services.settings.wards), services.settings.bot.language)
    channel = services.channel(services.officer_channel)
    posted = 0
    for ward in desk.wards:
        async with unit_of_work(services.sessions) as session:
            tips = await reports.open_since(
                session=session, ward_code=ward.code, received_before=now - DIGEST_AGE
            )
        if not tips:
            continue
        header = desk.t("officer.digest_header", ward=ward.name, count=len(tips))
        text = "\n".join([header, "", *(tip_line(desk, tip, now) for tip in tips)])
        try:
            for piece in split_text(text, TEXT_LIMIT):
                await channel.send(str(ward.officer_chat_id), Outbound(text=piece))
        except DeliveryError as error:
            log.warning("Digest for ward %s not delivered: %s", ward.code, error)
            continue
        posted += 1
    return posted
