"""Tip cards in the officers' group: rendering, posting, and re-posting what failed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from handlers.context import Services
from handlers.events import DeliveryError, EventKind, Media, Outbound
from handlers.text import split_text
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Tip, TipAttachment

log = logging.getLogger(__name__)

TEXT_LIMIT: Final = 4096
POST_LOCK: Final = "cards:post"


def render(services: Services, tip: Tip) -> list[str]:
    """Return the card's text for the officers, split into pieces Telegram accepts."""
    catalogue, language = services.catalogue, services.settings.bot.language

    def t(key: str, **values: object) -> str:
        return catalogue.text(language, key, **values)

    tz = services.settings.bot.tz
    lines = [
        t("card.header", number=tip.id, category=t(f"category.{tip.category.value}")),
        t("card.area", area=tip.area or t("tip.area_unknown")),
    ]
    if tip.place:
        lines.append(t("card.place", place=tip.place))
    if tip.latitude is not None and tip.longitude is not None:
        lines.append(t("card.map", lat=f"{tip.latitude:.5f}", lon=f"{tip.longitude:.5f}"))
    lines.append(t("card.received", time=tip.created_at.astimezone(tz).strftime("%H:%M %d/%m/%Y")))
    if tip.attachment_count:
        lines.append(t("card.files", count=tip.attachment_count))
    lines += ["", t("card.text"), tip.text]
    return split_text("\n".join(lines), TEXT_LIMIT)


def _caption(services: Services, tip: Tip, item: TipAttachment) -> str:
    return services.catalogue.text(
        services.settings.bot.language,
        "card.file_caption",
        number=tip.id,
        position=item.position,
        count=tip.attachment_count,
    )


async def post_tip(services: Services, tip: Tip, attachments: Sequence[TipAttachment]) -> None:
    """Post a tip's card, then its attachments as replies to it, recording each as it lands.

    Files go by their file handle (a fresh upload from the group's point of view), never
    forwarded: a forward would show who sent them.
    """
    assert tip.id is not None
    channel = services.channel(services.officer_channel)
    group = str(services.ward(tip.ward_code).officer_chat_id)
    card_id = tip.card_message_id
    if card_id is None:
        first, *rest = render(services, tip)
        card_id = (await channel.send(group, Outbound(text=first))).message_id
        async with unit_of_work(services.sessions) as session:
            await repo.mark_card_posted(
                session=session, tip_id=tip.id, message_id=card_id, now=services.clock()
            )
        for piece in rest:
            await channel.send(group, Outbound(text=piece, reply_to=card_id, silent=True))
    for item in attachments:
        if item.posted_message_id is not None:
            continue
        media = Media(
            kind=EventKind(item.kind.value),
            file_id=item.file_id,
            file_name=item.file_name,
            mime_type=item.mime_type,
        )
        sent = await channel.send(
            group,
            Outbound(
                text=_caption(services, tip, item), media=media, reply_to=card_id, silent=True
            ),
        )
        assert item.id is not None
        async with unit_of_work(services.sessions) as session:
            await repo.mark_attachment_posted(
                session=session, attachment_id=item.id, message_id=sent.message_id
            )


async def post_pending(services: Services) -> int:
    """Post every tip that has not fully reached its officers; return how many made it.

    Runs after each submission and on a timer, so a tip stored while Telegram refused
    (429, an outage, a restart) reaches the group later instead of being lost.
    """
    posted = 0
    async with services.locks.hold(POST_LOCK):
        async with unit_of_work(services.sessions) as session:
            tips = await repo.tips_to_post(session=session)
            files = {
                t.id: await repo.attachments_of(session=session, tip_id=t.id or 0) for t in tips
            }
        for tip in tips:
            try:
                await post_tip(services, tip, files[tip.id])
            except DeliveryError as error:
                log.warning("Tip #%s not posted yet (%s); will retry", tip.id, error)
                continue
            posted += 1
    return posted
