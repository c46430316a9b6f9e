"""The officers' queue: card buttons (claim, assign, status, ask, note, block, back) and replies.

Who may press them is staff.py's; how a question reaches the resident is contact.py's.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from handlers import cards, staff
from handlers.cards import CLOSED, NAMESPACE, button_data
from handlers.contact import notify_resident, relay_question
from handlers.context import Services, Turn
from handlers.events import Choice, DeliveryError, EventKind, Outbound
from handlers.router import Router, Scope, parse_id
from handlers.settings import Ward
from handlers.staff import group_ward, may_act, user_id
from handlers.triage import Priority
from storage import queue as queue_repo
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Tip, TipStatus

log = logging.getLogger(__name__)

router = Router(__name__, scope=Scope.GROUP)

NOTIFY_RESIDENT: Final = frozenset({TipStatus.ACKNOWLEDGED, TipStatus.RESOLVED})
QUESTION_LIMIT: Final = 3500
NOTE_LIMIT: Final = 3500


@router.choice(NAMESPACE)
async def on_card_button(turn: Turn, value: str) -> bool:
    """Act on a card button, if the person may and the card is current."""
    parts = value.split(":", 3)
    ward = group_ward(turn)
    tip_id = parse_id(parts[0])
    version = parse_id(parts[1]) if len(parts) > 1 else None
    if len(parts) < 3 or tip_id is None or version is None or ward is None:
        turn.notify(turn.t("queue.unknown_button"), alert=True)
        return True
    action = parts[2]
    argument = parts[3] if len(parts) == 4 else ""
    if not may_act(ward, user_id(turn)):
        turn.notify(turn.t("queue.not_allowed"), alert=True)
        return True
    tip = await repo.get_tip(session=turn.session, tip_id=tip_id)
    if tip is None or tip.ward_code != ward.code:
        turn.notify(turn.t("queue.not_this_ward"), alert=True)
        return True
    if tip.card_message_id is None and turn.event.message_id:
        # Pressed in the instant before the card's posting was recorded: the press says where.
        await repo.mark_card_posted(
            session=turn.session, tip_id=tip_id, message_id=turn.event.message_id, now=turn.now
        )
        tip.card_message_id = turn.event.message_id
    if version != tip.card_version:
        # A button from an older state of the card: show the card as it is, act on nothing.
        taken = action == "claim" and tip.assignee_name
        notice = turn.t("queue.already_claimed", name=tip.assignee_name) if taken else None
        turn.notify(notice or turn.t("queue.stale"), alert=True)
        turn.then(lambda: cards.refresh(turn.services, tip_id))
        return True
    await ACTIONS.get(action, _unknown)(turn, ward, tip, argument)
    return True


async def _unknown(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    turn.notify(turn.t("queue.unknown_button"), alert=True)


async def _claim(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    assert tip.id is not None
    user, name = await staff.actor(turn)
    action = turn.t("queue.did_claim", name=name)
    won = await queue_repo.claim(
        session=turn.session,
        tip_id=tip.id,
        officer_id=user,
        officer_name=name,
        now=turn.now,
        last_action=_stamped(turn, action),
    )
    if not won:
        fresh = await turn.session.get(Tip, tip.id, populate_existing=True)
        holder = fresh.assignee_name if fresh and fresh.assignee_name else "?"
        turn.notify(turn.t("queue.already_claimed", name=holder), alert=True)
        turn.then(lambda: cards.refresh(turn.services, tip.id or 0))
        return
    await _audit(
        turn,
        tip,
        "claim",
        (user, name),
        before=tip.status.value,
        after=TipStatus.ACKNOWLEDGED.value if tip.status is TipStatus.NEW else tip.status.value,
    )
    turn.notify(turn.t("queue.claimed", number=tip.id))
    _after_change(
        turn,
        tip,
        unpin=True,
        notify=TipStatus.ACKNOWLEDGED if tip.status is TipStatus.NEW else None,
    )


def _stamped(turn: Turn, action: str) -> str:
    time = turn.now.astimezone(turn.services.settings.bot.tz).strftime("%H:%M %d/%m")
    return f"{action} ({time})"


async def _audit(
    turn: Turn,
    tip: Tip,
    action: str,
    actor: tuple[int, str],
    *,
    before: str | None = None,
    after: str | None = None,
    detail: str | None = None,
) -> None:
    """Append the action to the tip's audit log."""
    await queue_repo.add_event(
        session=turn.session,
        tip_id=tip.id or 0,
        at=turn.now,
        action=action,
        actor_id=actor[0],
        actor_name=actor[1],
        before=before,
        after=after,
        detail=detail,
    )


async def _audit_and_touch(
    turn: Turn, tip: Tip, action: str, *, after: str | None = None, detail: str | None = None
) -> None:
    """Log an action that leaves the tip's fields alone, and show it as the card's last action."""
    actor = await staff.actor(turn)
    await _audit(turn, tip, action, actor, after=after, detail=detail)
    await queue_repo.touch(
        session=turn.session,
        tip_id=tip.id or 0,
        now=turn.now,
        last_action=_stamped(turn, turn.t(f"queue.did_{action}", name=actor[1])),
    )


def _after_change(
    turn: Turn, tip: Tip, *, unpin: bool = False, notify: TipStatus | None = None
) -> None:
    """After the commit: edit the card, unpin it if asked, tell the resident if it matters."""
    services, tip_id = turn.services, tip.id or 0
    turn.then(lambda: cards.refresh(services, tip_id))
    # Only urgent cards are pinned; the flag may not be written yet when an officer is quick.
    if unpin and (tip.pinned or tip.priority == Priority.URGENT) and tip.card_message_id:
        turn.then(lambda: _unpin(services, tip))
    if notify is not None:
        turn.then(lambda: notify_resident(services, tip_id, notify))


async def _unpin(services: Services, tip: Tip) -> None:
    assert tip.id is not None and tip.card_message_id is not None
    group = str(services.ward(tip.ward_code).officer_chat_id)
    try:
        await services.channel(services.officer_channel).unpin(group, tip.card_message_id)
    except DeliveryError as error:
        log.warning("Could not unpin the card of tip #%d: %s", tip.id, error)
        return
    async with unit_of_work(services.sessions) as session:
        await queue_repo.set_pinned(session=session, tip_id=tip.id, pinned=False)


async def _show(turn: Turn, tip: Tip, choices: tuple[tuple[Choice, ...], ...]) -> None:
    """Show a sub-menu in place of the card's buttons."""
    services, tip_id = turn.services, tip.id or 0

    async def edit() -> None:
        view = await cards.load_view(services, tip_id)
        if view is None or view.tip.card_message_id is None:
            return
        card = cards.render(services, view, services.clock())
        group = str(services.ward(view.tip.ward_code).officer_chat_id)
        await services.channel(services.officer_channel).edit(
            group, view.tip.card_message_id, Outbound(text=card.text, choices=choices)
        )

    turn.then(edit)


def _back(turn: Turn, tip: Tip) -> Choice:
    return Choice(turn.t("queue.button_back"), button_data(tip, "back"))


async def _menu_back(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    await _show(turn, tip, cards.main_choices(turn.services, tip))


async def _status_menu(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    buttons = [
        Choice(turn.t(f"status.{status.value}"), button_data(tip, f"st:{status.value}"))
        for status in TipStatus
        if status is not tip.status
    ]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    await _show(turn, tip, (*rows, (_back(turn, tip),)))


async def _set_status(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    assert tip.id is not None
    try:
        status = TipStatus(argument)
    except ValueError:
        turn.notify(turn.t("queue.unknown_button"), alert=True)
        return
    user, name = await staff.actor(turn)
    label = turn.t(f"status.{status.value}")
    await queue_repo.set_status(
        session=turn.session,
        tip_id=tip.id,
        status=status,
        closed=status in CLOSED,
        now=turn.now,
        last_action=_stamped(turn, turn.t("queue.did_status", name=name, status=label)),
    )
    await _audit(turn, tip, "status", (user, name), before=tip.status.value, after=status.value)
    turn.notify(turn.t("queue.status_set", status=label))
    _after_change(
        turn, tip, unpin=status in CLOSED, notify=status if status in NOTIFY_RESIDENT else None
    )


async def _assign_menu(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    if user_id(turn) not in ward.supervisors:
        turn.notify(turn.t("queue.supervisors_only"), alert=True)
        return
    people = list(dict.fromkeys([*ward.officers, *ward.supervisors]))
    names = await queue_repo.officer_names(session=turn.session, user_ids=people)
    buttons = [
        Choice(names.get(p) or turn.t("queue.officer_fallback", id=p), button_data(tip, f"to:{p}"))
        for p in people
    ]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    await _show(turn, tip, (*rows, (_back(turn, tip),)))


async def _assign(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    assert tip.id is not None
    target = parse_id(argument)
    if user_id(turn) not in ward.supervisors or target is None or not may_act(ward, target):
        turn.notify(turn.t("queue.supervisors_only"), alert=True)
        return
    user, name = await staff.actor(turn)
    names = await queue_repo.officer_names(session=turn.session, user_ids=[target])
    assignee = names.get(target) or turn.t("queue.officer_fallback", id=target)
    await queue_repo.assign(
        session=turn.session,
        tip_id=tip.id,
        officer_id=target,
        officer_name=assignee,
        now=turn.now,
        last_action=_stamped(turn, turn.t("queue.did_assign", name=name, assignee=assignee)),
    )
    await _audit(turn, tip, "assign", (user, name), before=tip.assignee_name, after=assignee)
    turn.notify(turn.t("queue.assigned", name=assignee))
    _after_change(turn, tip, unpin=True)


async def _prompt(turn: Turn, tip: Tip, kind: str) -> None:
    """Put a force-reply prompt under the card; the officer's reply to it is the text."""
    services, tip_id, group = turn.services, tip.id or 0, turn.event.chat
    card = turn.event.message_id  # the card whose button was pressed
    user, _ = await staff.actor(turn)
    text = turn.t(f"queue.{kind}_prompt", number=tip_id)

    async def post() -> None:
        sent = await services.channel(services.officer_channel).send(
            group, Outbound(text=text, force_reply=True, reply_to=card)
        )
        async with unit_of_work(services.sessions) as session:
            await queue_repo.add_prompt(
                session=session,
                group_chat=group,
                message_id=sent.message_id,
                tip_id=tip_id,
                kind=kind,
                officer_id=user,
                now=services.clock(),
            )

    turn.then(post)


async def _ask(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    assert tip.id is not None
    if await repo.get_contact_link(session=turn.session, tip_id=tip.id) is None:
        turn.notify(turn.t("queue.no_contact"), alert=True)
        return
    await _prompt(turn, tip, "ask")


async def _note(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    await _prompt(turn, tip, "note")


async def _block_menu(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    if tip.sender_tag is None:
        turn.notify(turn.t("queue.cannot_block"), alert=True)
        return
    days = turn.services.settings.triage.block_days
    confirm = Choice(turn.t("queue.block_confirm", days=days), button_data(tip, "block!"))
    await _show(turn, tip, ((confirm,), (_back(turn, tip),)))


async def _block(turn: Turn, ward: Ward, tip: Tip, argument: str) -> None:
    assert tip.id is not None
    if tip.sender_tag is None:
        turn.notify(turn.t("queue.cannot_block"), alert=True)
        return
    until = turn.now + timedelta(days=turn.services.settings.triage.block_days)
    await queue_repo.block_sender(
        session=turn.session, sender_tag=tip.sender_tag, until=until, tip_id=tip.id, now=turn.now
    )
    await _audit_and_touch(turn, tip, "block", after=until.date().isoformat())
    turn.notify(turn.t("queue.blocked"))
    _after_change(turn, tip)


ACTIONS: Final = {
    "claim": _claim,
    "assign": _assign_menu,
    "to": _assign,
    "status": _status_menu,
    "st": _set_status,
    "ask": _ask,
    "note": _note,
    "block": _block_menu,
    "block!": _block,
    "back": _menu_back,
}


@router.fallback
async def on_officer_reply(turn: Turn) -> bool:
    """Take an officer's reply to a prompt (a question or a note) or to a card (a question)."""
    event = turn.event
    ward = group_ward(turn)
    if event.kind is not EventKind.TEXT or event.reply_to is None or ward is None:
        return False
    if not may_act(ward, user_id(turn)):
        return False
    prompt = await queue_repo.take_prompt(
        session=turn.session, group_chat=event.chat, message_id=event.reply_to
    )
    if prompt is not None:
        tip = await repo.get_tip(session=turn.session, tip_id=prompt.tip_id)
        kind = prompt.kind
    else:
        tip = await queue_repo.find_tip_by_card(
            session=turn.session, ward_code=ward.code, card_message_id=event.reply_to
        )
        kind = "ask"
    if tip is None or tip.id is None:
        return False
    text = (event.text or "").strip()
    if not text:
        return True
    if kind == "note":
        await _save_note(turn, tip, text)
    else:
        await _send_question(turn, tip, text)
    return True


async def _save_note(turn: Turn, tip: Tip, text: str) -> None:
    assert tip.id is not None
    if len(text) > NOTE_LIMIT:
        reply = turn.t("hardening.note_too_long", limit=NOTE_LIMIT)
        turn.send(Outbound(text=reply, reply_to=turn.event.message_id))
        return
    await _audit_and_touch(turn, tip, "note", detail=text)
    turn.send(
        Outbound(
            text=turn.t("queue.note_saved", number=tip.id),
            reply_to=turn.event.message_id,
            silent=True,
        )
    )
    _after_change(turn, tip)


async def _send_question(turn: Turn, tip: Tip, text: str) -> None:
    assert tip.id is not None
    if len(text) > QUESTION_LIMIT:
        turn.send(
            Outbound(
                text=turn.t("queue.question_too_long", limit=QUESTION_LIMIT),
                reply_to=turn.event.message_id,
            )
        )
        return
    link = await repo.get_contact_link(session=turn.session, tip_id=tip.id)
    if link is None:
        turn.send(Outbound(text=turn.t("queue.no_contact"), reply_to=turn.event.message_id))
        return
    await _audit_and_touch(turn, tip, "ask", detail=text)
    user = user_id(turn) or 0
    services, tip_id, sealed = turn.services, tip.id, link.sealed
    group, officer_message = turn.event.chat, turn.event.message_id

    async def deliver() -> None:
        outcome = await relay_question(services, tip_id, sealed, text, officer_id=user)
        await services.channel(services.officer_channel).send(
            group,
            Outbound(
                text=services.officer_text(f"queue.question_{outcome}", number=tip_id),
                reply_to=officer_message,
                silent=True,
            ),
        )
        await cards.refresh(services, tip_id)

    turn.then(deliver)
