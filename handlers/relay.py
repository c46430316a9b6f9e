"""The resident's side of the anonymous conversation: answering an officer's question."""

from __future__ import annotations

import logging
from typing import Final

from handlers import menu
from handlers.contact import ANSWER_NAMESPACE, open_contact
from handlers.context import Services, Turn
from handlers.events import Choice, DeliveryError, EventKind, Outbound
from handlers.router import Router, callback, parse_id
from storage import queue as queue_repo
from storage import repositories as repo

log = logging.getLogger(__name__)

router = Router(__name__)

AWAITING: Final = "answer:"
ANSWER_LIMIT: Final = 3500


async def _is_sender(turn: Turn, tip_id: int) -> bool:
    """Return whether this chat sent the tip: only its sealed contact link can tell."""
    link = await repo.get_contact_link(session=turn.session, tip_id=tip_id)
    if link is None:
        return False
    contact = open_contact(turn.services, tip_id, link.sealed)
    return contact is not None and (contact["channel"], contact["chat"]) == (
        turn.event.channel,
        turn.event.chat,
    )


@router.choice(ANSWER_NAMESPACE)
async def on_answer_button(turn: Turn, value: str) -> bool:
    """Ask the resident to type their answer to an officer's question."""
    tip_id = parse_id(value)
    if tip_id is not None and await _is_sender(turn, tip_id):
        turn.awaiting = f"{AWAITING}{tip_id}"
        cancel = Choice(turn.t("relay.cancel"), callback(ANSWER_NAMESPACE, "cancel"))
        turn.say(turn.t("relay.type_answer", number=tip_id), ((cancel,),))
    elif value == "cancel":
        menu.show_menu(turn)
    else:
        menu.show_menu(turn, prefix=turn.t("common.stale_button"))
    return True


@router.fallback
async def on_answer(turn: Turn) -> bool:
    """Relay a typed answer, or a reply to an officer's question, to the officers."""
    event = turn.event
    if event.kind is not EventKind.TEXT:
        return False
    tip_id: int | None = None
    if turn.awaiting and turn.awaiting.startswith(AWAITING):
        tip_id = int(turn.awaiting.removeprefix(AWAITING))
    elif event.reply_to is not None:
        reference = turn.services.keyring.digest(
            "reply", f"{event.channel}:{event.chat}:{event.reply_to}"
        )
        question = await queue_repo.find_question(session=turn.session, resident_ref=reference)
        tip_id = question.tip_id if question else None
    if tip_id is None:
        return False
    text = (event.text or "").strip()
    if len(text) > ANSWER_LIMIT:
        turn.say(turn.t("relay.answer_too_long", limit=ANSWER_LIMIT))
        return True
    tip = await repo.get_tip(session=turn.session, tip_id=tip_id)
    if tip is None or not text:
        return False
    await queue_repo.add_message(
        session=turn.session, tip_id=tip_id, direction="answer", text=text, at=turn.now
    )
    await queue_repo.add_event(session=turn.session, tip_id=tip_id, at=turn.now, action="answer")
    turn.awaiting = None
    services, group = turn.services, str(turn.services.ward(tip.ward_code).officer_chat_id)
    card = tip.card_message_id
    turn.then(lambda: _post_answer(services, group, card, tip_id, text))
    menu.show_menu(turn, prefix=turn.t("relay.answer_sent", number=tip_id))
    return True


async def _post_answer(
    services: Services, group: str, card: str | None, tip_id: int, text: str
) -> None:
    """Show the answer in the officers' group under the card, marked with the tip number only."""
    message = services.officer_text("relay.answer_in_group", number=tip_id, text=text)
    try:
        await services.channel(services.officer_channel).send(
            group, Outbound(text=message, reply_to=card)
        )
    except DeliveryError as error:
        log.warning("Answer for tip #%d not posted: %s", tip_id, error)
