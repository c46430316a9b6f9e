"""Tra cứu: a resident types their 16-digit receipt and sees what became of the tip."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Final

from handlers import cards, menu, relay
from handlers.context import Turn
from handlers.events import Choice, EventKind
from handlers.router import Router, callback
from handlers.text import only_digits
from storage import queue as queue_repo
from storage import repositories as repo
from storage import retention
from storage.models import Tip, TipMessage

log = logging.getLogger(__name__)
router = Router(__name__)

NAMESPACE: Final = "l"
AWAITING: Final = "receipt"
FAILED_SCOPE: Final = "lookup"
WINDOW: Final = timedelta(hours=1)
RECEIPT_DIGITS: Final = 16
CONVERSATION_SHOWN: Final = 6


def _cancel(turn: Turn) -> tuple[tuple[Choice, ...], ...]:
    return ((Choice(turn.t("lookup.cancel"), callback(NAMESPACE, "cancel")),),)


def _await_receipt(turn: Turn) -> None:
    turn.awaiting = AWAITING
    turn.say(turn.t("lookup.ask"), _cancel(turn))


def _forget_tag(turn: Turn, tip_id: int) -> str:
    """A keyed tag that ties a «stop questions» button to this chat and this tip.

    Only a chat that typed the receipt was shown the button; forged data for another tip,
    or the same button pressed from another chat, does not match.
    """
    return turn.services.keyring.digest("forget-contact", f"{turn.chat_key}:{tip_id}")[:16]


def _forget_target(turn: Turn, argument: str) -> int | None:
    """Return the tip a «stop questions» button names, if its tag is this chat's."""
    number, _, tag = argument.partition(":")
    if not number.isdigit() or len(number) > 12:
        return None
    tip_id = int(number)
    return tip_id if hmac.compare_digest(tag, _forget_tag(turn, tip_id)) else None


@router.choice(NAMESPACE)
async def on_choice(turn: Turn, value: str) -> bool:
    """Start or cancel a lookup, or stop an officer's questions to a tip's sender."""
    action, _, argument = value.partition(":")
    if action == "start":
        _await_receipt(turn)
    elif action in ("forget", "forgetok") and (tip_id := _forget_target(turn, argument)):
        if action == "forget":
            keep = Choice(turn.t("lookup.forget_keep"), callback(NAMESPACE, "cancel"))
            yes = Choice(turn.t("lookup.forget_yes"), callback(NAMESPACE, f"forgetok:{argument}"))
            turn.say(turn.t("lookup.forget_confirm", number=tip_id), ((yes,), (keep,)))
        else:
            await _forget_contact(turn, tip_id)
    else:
        turn.awaiting = None
        menu.show_menu(turn)
    return True


async def _forget_contact(turn: Turn, tip_id: int) -> None:
    """Delete the way back to this tip's sender, note it on the tip, and say so."""
    turn.awaiting = None
    if await retention.forget_contact(session=turn.session, tip_id=tip_id):
        await queue_repo.add_event(
            session=turn.session, tip_id=tip_id, at=turn.now, action="contact_deleted"
        )
        await queue_repo.touch(
            session=turn.session,
            tip_id=tip_id,
            now=turn.now,
            last_action=turn.services.officer_text("queue.did_contact_deleted"),
        )
        log.info("Tip #%d: its sender deleted the contact link", tip_id)
        services = turn.services
        turn.then(lambda: cards.refresh(services, tip_id))
    menu.show_menu(turn, prefix=turn.t("lookup.forget_done", number=tip_id))


@router.command("tracuu", "lookup")
async def on_command(turn: Turn) -> bool:
    """Look up the receipt given with the command, or ask for one."""
    if len(only_digits(turn.event.args)) == RECEIPT_DIGITS:
        await look_up(turn, only_digits(turn.event.args))
    else:
        _await_receipt(turn)
    return True


@router.fallback
async def on_input(turn: Turn) -> bool:
    """Take a typed receipt, when one is awaited or the message is nothing but 16 digits."""
    event = turn.event
    if event.kind is not EventKind.TEXT:
        return False
    digits = only_digits(event.text or "")
    bare = len(digits) == RECEIPT_DIGITS and not any(ch.isalpha() for ch in event.text or "")
    if turn.awaiting != AWAITING and not bare:
        return False
    if len(digits) != RECEIPT_DIGITS:
        turn.say(turn.t("lookup.bad_format"), _cancel(turn))
        return True
    await look_up(turn, digits)
    return True


async def look_up(turn: Turn, digits: str) -> None:
    """Show the tip behind a receipt; a wrong code and an unknown one get the same answer."""
    limit = turn.services.settings.limits.lookups_per_hour
    failures = await repo.count_in_window(
        session=turn.session,
        chat_key=turn.chat_key,
        scope=FAILED_SCOPE,
        window=WINDOW,
        now=turn.now,
    )
    if failures >= limit:
        turn.awaiting = None
        menu.show_menu(turn, prefix=turn.t("lookup.locked"))
        return
    tip = await repo.find_tip_by_receipt(
        session=turn.session, receipt_hash=turn.services.keyring.receipt_hash(digits)
    )
    if tip is None:
        await repo.record_in_window(
            session=turn.session,
            chat_key=turn.chat_key,
            scope=FAILED_SCOPE,
            window=WINDOW,
            now=turn.now,
        )
        turn.say(turn.t("lookup.not_found"), _cancel(turn))
        return
    assert tip.id is not None
    messages = await queue_repo.messages_of(session=turn.session, tip_id=tip.id)
    text = status_text(turn, tip)
    if messages:
        text += "\n\n" + conversation_text(turn, messages)
    turn.awaiting = None
    if any(m.direction == "question" for m in messages):
        # The receipt proves the sender, from this phone or another: the next text answers.
        turn.awaiting = f"{relay.AWAITING}{tip.id}"
        text += "\n\n" + turn.t("lookup.answer_hint")
    choices = menu.menu_choices(turn)
    if await repo.get_contact_link(session=turn.session, tip_id=tip.id) is not None:
        data = callback(NAMESPACE, f"forget:{tip.id}:{_forget_tag(turn, tip.id)}")
        choices = ((Choice(turn.t("lookup.forget"), data),), *choices)
    turn.say(text, choices)


def status_text(turn: Turn, tip: Tip) -> str:
    """Describe a tip's progress in the words a resident understands."""
    tz = turn.services.settings.bot.tz
    return turn.t(
        "lookup.found",
        number=tip.id,
        sent=tip.created_at.astimezone(tz).strftime("%H:%M %d/%m/%Y"),
        updated=tip.updated_at.astimezone(tz).strftime("%H:%M %d/%m/%Y"),
        status=turn.t(f"status.{tip.status.value}"),
    )


def conversation_text(turn: Turn, messages: Sequence[TipMessage]) -> str:
    """Show the latest questions and answers, officers only as «Cán bộ tiếp nhận»."""
    tz = turn.services.settings.bot.tz
    lines = [turn.t("lookup.conversation")]
    for message in messages[-CONVERSATION_SHOWN:]:
        lines.append(
            turn.t(
                f"lookup.{message.direction}",
                time=message.at.astimezone(tz).strftime("%H:%M %d/%m"),
                text=message.text,
            )
        )
    return "\n".join(lines)
