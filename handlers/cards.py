"""Tip cards in the officers' group: rendering, posting, re-posting what failed, editing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from handlers import images
from handlers.context import Services
from handlers.events import Channel, Choice, DeliveryError, EventKind, Media, Outbound, Sent
from handlers.router import callback
from handlers.text import split_text, utf16_length
from handlers.triage import Priority
from storage import queue as queue_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import AttachmentKind, Tip, TipAttachment, TipStatus

log = logging.getLogger(__name__)

NAMESPACE: Final = "q"
TEXT_LIMIT: Final = 4096
# The tip's own words on the card stop here; the rest follows as replies. A fixed cut keeps
# the card and its continuation stable while the header around it changes.
CARD_TEXT_BUDGET: Final = 3000
CLOSED: Final = frozenset(
    {TipStatus.RESOLVED, TipStatus.UNFOUNDED, TipStatus.DUPLICATE, TipStatus.SPAM}
)
STATUS_ICONS: Final = {
    TipStatus.NEW: "🆕",
    TipStatus.ACKNOWLEDGED: "👮",
    TipStatus.VERIFYING: "🔍",
    TipStatus.REFERRED: "↗️",
    TipStatus.RESOLVED: "✅",
    TipStatus.UNFOUNDED: "⛔",
    TipStatus.DUPLICATE: "♊",
    TipStatus.SPAM: "🗑",
}


@dataclass(frozen=True, slots=True)
class CardView:
    """Everything a card shows, read in one go."""

    tip: Tip
    attachments: Sequence[TipAttachment]
    contact: bool
    blocked_until: datetime | None


def button_data(tip: Tip, action: str) -> str:
    """Return a card button's data: tip, card version and action, short and checkable."""
    return callback(NAMESPACE, f"{tip.id}:{tip.card_version}:{action}")


def _cut(text: str) -> int:
    """Return where the card's share of the tip text ends."""
    if utf16_length(text) <= CARD_TEXT_BUDGET:
        return len(text)
    return len(split_text(text, CARD_TEXT_BUDGET)[0])


def age(t: Callable[..., str], since: datetime, now: datetime) -> str:
    """Say how long ago something happened: minutes, then hours, then days."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return t("card.age_minutes", n=minutes)
    if minutes < 48 * 60:
        return t("card.age_hours", n=minutes // 60)
    return t("card.age_days", n=minutes // 1440)


def main_choices(services: Services, tip: Tip) -> tuple[tuple[Choice, ...], ...]:
    """Return the card's action buttons for its current state."""
    language = services.settings.bot.language

    def button(action: str) -> Choice:
        return Choice(
            services.catalogue.text(language, f"queue.button_{action}"), button_data(tip, action)
        )

    first = (button("assign"),) if tip.assignee_id else (button("claim"), button("assign"))
    return (first, (button("status"), button("ask")), (button("note"), button("block")))


def render(services: Services, view: CardView, now: datetime) -> Outbound:
    """Return the card as officers see it: facts first, then the resident's words."""
    tip, t = view.tip, services.officer_text
    tz = services.settings.bot.tz

    flags = " · ".join(t(f"flag.{f['code']}") for f in tip.flags)
    lines = [
        t(
            "card.header",
            icon=STATUS_ICONS[tip.status],
            number=tip.id,
            category=t(f"category.{tip.category.value}"),
        ),
        t(f"priority.{Priority(tip.priority).value}") + (f" · ⚑ {flags}" if flags else ""),
        t("card.area", area=tip.area or t("tip.area_unknown")),
    ]
    if tip.place:
        lines.append(t("card.place", place=tip.place))
    if tip.latitude is not None and tip.longitude is not None:
        lines.append(t("card.map", lat=f"{tip.latitude:.5f}", lon=f"{tip.longitude:.5f}"))
    received = tip.created_at.astimezone(tz).strftime("%H:%M %d/%m/%Y")
    lines.append(t("card.received", time=received, age=age(t, tip.created_at, now)))
    who = tip.assignee_name or t("card.nobody")
    lines.append(t("card.status", status=t(f"status.{tip.status.value}"), who=who))
    if tip.last_action:
        lines.append(t("card.last_action", action=tip.last_action))
    if tip.attachment_count:
        lines.append(t("card.files", count=tip.attachment_count))
    as_is = [str(item.position) for item in view.attachments if not _is_cleaned(item)]
    if as_is:
        lines.append(t("media.as_is", files=", ".join(as_is)))
    lines.append(t("card.contact_yes" if view.contact else "card.contact_no"))
    if view.blocked_until is not None and view.blocked_until > now:
        lines.append(
            t("card.blocked", until=view.blocked_until.astimezone(tz).strftime("%d/%m/%Y"))
        )
    if tip.purged_at is not None:
        purged = tip.purged_at.astimezone(tz).strftime("%d/%m/%Y")
        lines += ["", t("card.purged", date=purged)]
    else:
        cut = _cut(tip.text)
        words = tip.text[:cut] + (t("card.continued") if cut < len(tip.text) else "")
        lines += ["", t("card.text"), words]
    return Outbound(text="\n".join(lines), choices=main_choices(services, tip))


def continuation(tip: Tip) -> list[str]:
    """Return the rest of a long tip text, in pieces posted as replies to the card."""
    rest = tip.text[_cut(tip.text) :].strip()
    return split_text(rest, TEXT_LIMIT) if rest else []


async def load_view(services: Services, tip_id: int) -> CardView | None:
    """Read a tip and what its card shows about it."""
    async with unit_of_work(services.sessions) as session:
        tip = await repo.get_tip(session=session, tip_id=tip_id)
        if tip is None:
            return None
        attachments = await repo.attachments_of(session=session, tip_id=tip_id)
        contact = await repo.get_contact_link(session=session, tip_id=tip_id) is not None
        blocked = await queue_repo.blocked_until(session=session, sender_tag=tip.sender_tag)
    return CardView(tip, attachments, contact, blocked)


def _caption(services: Services, tip: Tip, item: TipAttachment) -> str:
    return services.officer_text(
        "card.file_caption", number=tip.id, position=item.position, count=tip.attachment_count
    )


def _is_cleaned(item: TipAttachment) -> bool:
    """Return whether an attachment reaches the group re-encoded (images) or as sent (others)."""
    if item.kind == AttachmentKind.PHOTO:
        return True
    return item.kind == AttachmentKind.DOCUMENT and images.is_image(item.mime_type, item.file_name)


async def _post_attachment(
    services: Services, channel: Channel, group: str, card_id: str, tip: Tip, item: TipAttachment
) -> Sent:
    """Post one file under its card: an image cleaned of its metadata, anything else as sent.

    An image that cannot be fetched or decoded is never posted as it came, since it could
    carry the sender's GPS position: a note takes its place. A download that may work later
    raises DeliveryError instead, and the repost job tries again.
    """
    caption = _caption(services, tip, item)
    # A file a resident sent on another chat app is held by that app's adapter.
    source = services.file_channel(item.file_id)
    if not _is_cleaned(item):
        media = Media(
            kind=EventKind(item.kind.value),
            file_id=item.file_id,
            file_name=item.file_name,
            mime_type=item.mime_type,
        )
        if source is not channel:
            media = replace(media, file_id="", data=await source.download(item.file_id))
        return await channel.send(
            group, Outbound(text=caption, media=media, reply_to=card_id, silent=True)
        )
    try:
        picture = await asyncio.to_thread(images.clean, await source.download(item.file_id))
    except DeliveryError as error:
        if not error.permanent:
            raise
        reason = f"download refused: {error}"
    except images.ImageRejected as error:
        reason = f"undecodable: {error}"
    else:
        media = Media(
            kind=EventKind.PHOTO if picture.fits_photo else EventKind.DOCUMENT,
            file_id="",
            # Never the original name: "IMG_20261122_083015.jpg" says when, others say who.
            file_name=f"tin-{tip.id}-{item.position}.{picture.extension}",
            mime_type=picture.mime_type,
            data=picture.data,
        )
        return await channel.send(
            group, Outbound(text=caption, media=media, reply_to=card_id, silent=True)
        )
    log.warning(
        "Tip #%d: image %d/%d withheld from the group (%s)",
        tip.id,
        item.position,
        tip.attachment_count,
        reason,
    )
    note = services.officer_text(
        "media.withheld", number=tip.id, position=item.position, count=tip.attachment_count
    )
    return await channel.send(group, Outbound(text=note, reply_to=card_id, silent=True))


async def post_tip(services: Services, tip_id: int) -> None:
    """Post what has not yet reached the group of one tip: its card, then its files.

    Each piece is recorded as it lands, so a retry posts only what is missing. Files go by
    their file handle or, for images, as cleaned uploads; never forwarded: a forward would
    show who sent them.
    """
    channel = services.channel(services.officer_channel)
    async with services.locks.hold(f"card:{tip_id}"):
        view = await load_view(services, tip_id)
        if view is None:
            return
        tip = view.tip
        group = str(services.ward(tip.ward_code).officer_chat_id)
        card_id = tip.card_message_id
        if card_id is None:
            urgent = tip.priority == Priority.URGENT
            spam = any(flag["code"] == "suspected_spam" for flag in tip.flags)
            card = render(services, view, services.clock())
            sent = await channel.send(
                group, Outbound(text=card.text, choices=card.choices, silent=not urgent or spam)
            )
            card_id = sent.message_id
            async with unit_of_work(services.sessions) as session:
                await repo.mark_card_posted(
                    session=session, tip_id=tip_id, message_id=card_id, now=services.clock()
                )
            for piece in continuation(tip):
                await channel.send(group, Outbound(text=piece, reply_to=card_id, silent=True))
            if urgent and not spam:
                await pin_card(services, tip_id, group, card_id)
        for item in view.attachments:
            if item.posted_message_id is not None:
                continue
            sent = await _post_attachment(services, channel, group, card_id, tip, item)
            assert item.id is not None
            async with unit_of_work(services.sessions) as session:
                await repo.mark_attachment_posted(
                    session=session, attachment_id=item.id, message_id=sent.message_id
                )


async def pin_card(services: Services, tip_id: int, group: str, card_id: str) -> None:
    """Pin an urgent card until someone claims it; a group without rights just skips it."""
    try:
        await services.channel(services.officer_channel).pin(group, card_id)
    except DeliveryError as error:
        log.warning("Could not pin the card of tip #%d: %s", tip_id, error)
        return
    async with unit_of_work(services.sessions) as session:
        await queue_repo.set_pinned(session=session, tip_id=tip_id, pinned=True)


async def post_one(services: Services, tip_id: int) -> bool:
    """Post a tip's card now; on failure leave it to the retry job. Return whether it landed."""
    try:
        await post_tip(services, tip_id)
    except DeliveryError as error:
        log.warning("Tip #%d not posted yet (%s); will retry", tip_id, error)
        return False
    return True


async def post_pending(services: Services) -> int:
    """Post every tip that has not fully reached its officers; return how many made it.

    Runs on a timer and at start, so a tip stored while Telegram refused (429, an outage,
    the bot removed from the group, a restart) reaches the group later instead of being lost.
    """
    async with unit_of_work(services.sessions) as session:
        pending = [tip.id for tip in await repo.tips_to_post(session=session) if tip.id]
    posted = 0
    for tip_id in pending:
        posted += await post_one(services, tip_id)
    return posted


async def refresh(services: Services, tip_id: int) -> None:
    """Edit a posted card in place so it shows the tip as it is now."""
    view = await load_view(services, tip_id)
    if view is None or view.tip.card_message_id is None:
        return
    group = str(services.ward(view.tip.ward_code).officer_chat_id)
    card = render(services, view, services.clock())
    try:
        await services.channel(services.officer_channel).edit(
            group, view.tip.card_message_id, card
        )
    except DeliveryError as error:
        log.warning("Could not update the card of tip #%d: %s", tip_id, error)
