"""The contact relay: an officer's question and status notices, delivered to the resident.

The tip's sealed contact link is opened here and only here; nothing about the officer goes
with what is delivered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Final

from handlers import traces
from handlers.context import Services, Turn
from handlers.events import Choice, DeliveryError, DeliveryReason, Outbound
from handlers.router import callback
from storage import queue as queue_repo
from storage import repositories as repo
from storage.crypto import SealError
from storage.db import unit_of_work
from storage.models import TipStatus

log = logging.getLogger(__name__)

ANSWER_NAMESPACE: Final = "a"


def open_contact(services: Services, tip_id: int, sealed: bytes) -> dict[str, str] | None:
    """Open a tip's sealed contact link: the only place a resident's chat is ever read."""
    try:
        contact: dict[str, str] = json.loads(
            services.keyring.open(sealed, context=f"contact:{tip_id}")
        )
    except (SealError, ValueError):
        log.error("Contact link of tip #%d cannot be opened with this key", tip_id)
        return None
    return contact


def _question(services: Services, contact: dict[str, str], tip_id: int, text: str) -> Outbound:
    language = contact.get("language", services.settings.bot.language)

    def t(key: str, **values: object) -> str:
        return services.catalogue.text(language, key, **values)

    return Outbound(
        text=t("relay.question", number=tip_id, text=text),
        choices=((Choice(t("relay.answer_button"), callback(ANSWER_NAMESPACE, str(tip_id))),),),
    )


def held_key(services: Services, channel: str, chat: str) -> str:
    """The keyed hash under which questions wait for a chat to write again."""
    return services.keyring.digest("held", f"{channel}:{chat}")


async def relay_question(
    services: Services, tip_id: int, sealed: bytes, text: str, *, officer_id: int
) -> str:
    """Deliver an officer's question to the resident as from «Cán bộ tiếp nhận»; say how it went.

    Nothing about the officer goes with it: not the name, not the account. A platform that
    lets the bot write only to someone who wrote lately (Zalo OA: 7 days) refuses it when the
    resident has been silent: the question is then held ("held"), and goes out the next time
    they write.
    """
    contact = open_contact(services, tip_id, sealed)
    if contact is None:
        return "failed"
    message = _question(services, contact, tip_id, text)
    try:
        sent = await services.channel(contact["channel"]).send(contact["chat"], message)
    except DeliveryError as error:
        log.warning("Question for tip #%d not delivered: %s", tip_id, error)
        if error.reason is DeliveryReason.WINDOW_CLOSED:
            async with unit_of_work(services.sessions) as session:
                await queue_repo.add_message(
                    session=session,
                    tip_id=tip_id,
                    direction="question",
                    text=text,
                    at=services.clock(),
                    officer_id=officer_id,
                    held_for=held_key(services, contact["channel"], contact["chat"]),
                )
            return "held"
        return "blocked" if error.recipient_gone else "failed"
    await traces.remember(services, contact["channel"], contact["chat"], sent.message_ids)
    reference = services.keyring.digest(
        "reply", f"{contact['channel']}:{contact['chat']}:{sent.message_id}"
    )
    async with unit_of_work(services.sessions) as session:
        await queue_repo.add_message(
            session=session,
            tip_id=tip_id,
            direction="question",
            text=text,
            at=services.clock(),
            officer_id=officer_id,
            resident_ref=reference,
        )
    return "sent"


async def deliver_held(turn: Turn, sent: Sequence[str]) -> None:
    """Send the questions held for this chat now that it wrote, and tell the officers.

    A middleware (bot/app.py), run once the turn's replies are out: the resident's own
    message has just opened the platform's window again.
    """
    event, services = turn.event, turn.services
    if not event.private or services.channel(event.channel).capabilities.reply_window is None:
        return
    key = held_key(services, event.channel, event.chat)
    async with unit_of_work(services.sessions) as session:
        held = await queue_repo.held_questions(session=session, held_for=key)
    for question in held:
        contact = {"channel": event.channel, "chat": event.chat, "language": turn.language}
        message = _question(services, contact, question.tip_id, question.text)
        try:
            delivered = await services.channel(event.channel).send(event.chat, message)
        except DeliveryError as error:
            log.warning("Held question for tip #%d not delivered: %s", question.tip_id, error)
            return
        await traces.remember(services, event.channel, event.chat, delivered.message_ids)
        reference = services.keyring.digest(
            "reply", f"{event.channel}:{event.chat}:{delivered.message_id}"
        )
        async with unit_of_work(services.sessions) as session:
            await queue_repo.release_question(
                session=session, message_id=question.id, resident_ref=reference
            )
            tip = await repo.get_tip(session=session, tip_id=question.tip_id)
        if tip is None:
            continue
        group = str(services.ward(tip.ward_code).officer_chat_id)
        try:
            await services.channel(services.officer_channel).send(
                group,
                Outbound(
                    text=services.officer_text("queue.question_released", number=tip.id),
                    silent=True,
                ),
            )
        except DeliveryError as error:
            log.warning("Group not told of tip #%d's question: %s", question.tip_id, error)


async def notify_resident(services: Services, tip_id: int, status: TipStatus) -> None:
    """Send the resident a short neutral notice of a status that matters to them."""
    async with unit_of_work(services.sessions) as session:
        link = await repo.get_contact_link(session=session, tip_id=tip_id)
    if link is None:
        return
    contact = open_contact(services, tip_id, link.sealed)
    if contact is None:
        return
    language = contact.get("language", services.settings.bot.language)
    text = services.catalogue.text(language, f"relay.status_{status.value}", number=tip_id)
    channel = services.channel(contact["channel"])
    try:
        sent = await channel.send(contact["chat"], Outbound(text=text))
    except DeliveryError as error:
        log.warning("Status notice for tip #%d not delivered: %s", tip_id, error)
        return
    await traces.remember(services, contact["channel"], contact["chat"], sent.message_ids)
