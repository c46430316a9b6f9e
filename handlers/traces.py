"""Xóa dấu vết: the bot deletes the resident's recent chat with it, on every device they use.

Every message of a private chat, both sides, is recorded from the first /start, not only from
the start of a tip: the welcome and the menu already say "hòm thư tố giác ma túy" to whoever
picks up the phone. Groups are never recorded. A row holds a keyed hash of the chat under its
own purpose (so it joins no other table), the message id and the hour; never a tip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from handlers import menu
from handlers.context import Services, Turn
from handlers.events import Choice, EventKind, Inbound, Outbound
from handlers.router import Router, callback
from handlers.text import match_choice
from storage import traces as traces_repo
from storage.db import unit_of_work

log = logging.getLogger(__name__)

router = Router(__name__)

NAMESPACE: Final = menu.TRACES_NAMESPACE
AWAITING: Final = "traces"
PURPOSE: Final = "traces"
# Telegram lets a bot delete a private chat's messages for 48 hours after they were sent.
WINDOW: Final = timedelta(hours=48)


def trace_key(services: Services, channel: str, chat: str) -> str:
    """Return the keyed hash that stands for a chat in the traces table, and nowhere else."""
    return services.keyring.digest(PURPOSE, f"{channel}:{chat}")


def sent_hour(moment: datetime) -> datetime:
    """Return the start of the hour of ``moment``.

    An exact time would equal the tip's ``created_at`` and tell which chat sent it. Rounding
    down means a message of the oldest hour is given up a little before Telegram would refuse
    it, so a message is never tried after its 48 hours.
    """
    return moment.replace(minute=0, second=0, microsecond=0)


async def remember(
    services: Services, channel: str, chat: str, message_ids: Sequence[str]
) -> None:
    """Record messages of a resident's private chat, in one insert; never raise."""
    if not message_ids:
        return
    try:
        async with unit_of_work(services.sessions) as session:
            await traces_repo.add_traces(
                session=session,
                trace_key=trace_key(services, channel, chat),
                message_ids=message_ids,
                hour=sent_hour(services.clock()),
            )
    except Exception as error:
        # Losing a few ids only means those messages stay; the turn itself has succeeded.
        log.error(
            "Traces of %s not recorded: %s",
            services.keyring.pseudonym(channel, chat),
            type(error).__name__,
        )


async def remember_turn(turn: Turn, sent: Sequence[str]) -> None:
    """Record what the resident typed and what the bot answered, for «Xóa dấu vết».

    A middleware (bot/app.py), run once the turn's replies are out. A tap brings no new
    message: its message is the bot's, recorded when it was sent.
    """
    event = turn.event
    if not event.private:
        return
    typed = event.message_id if event.kind is not EventKind.CHOICE else None
    ids = [typed, *sent] if typed else list(sent)
    await remember(turn.services, event.channel, event.chat, ids)


async def purge(services: Services) -> int:
    """Forget messages older than Telegram's 48 hours: they can no longer be deleted."""
    async with unit_of_work(services.sessions) as session:
        purged = await traces_repo.purge_traces(session=session, until=services.clock() - WINDOW)
    if purged:
        log.info("Forgot %d message id(s) past 48 hours", purged)
    return purged


def _choices(turn: Turn) -> tuple[tuple[Choice, ...], ...]:
    return (
        (Choice(turn.t("traces.confirm"), callback(NAMESPACE, "yes")),),
        (Choice(turn.t("traces.keep"), callback(NAMESPACE, "no")),),
    )


def ask(turn: Turn) -> None:
    """Say what will be deleted and what cannot be, and ask to confirm."""
    turn.awaiting = AWAITING
    turn.say(turn.t("traces.ask"), _choices(turn))


def _confirm(turn: Turn) -> None:
    """Delete the chat once this turn is over, leaving no new message behind."""
    turn.awaiting = None
    services, event, language = turn.services, turn.event, turn.language
    # The notice says how it went, so the button is answered after the deletion.
    turn.answer_later = event.kind is EventKind.CHOICE
    turn.then(lambda: clear(services, event, language))


@router.choice(NAMESPACE)
async def on_choice(turn: Turn, value: str) -> bool:
    """Ask, delete, or keep the chat as it is."""
    if value == "ask":
        ask(turn)
    elif value == "yes":
        _confirm(turn)
    elif value == "no":
        menu.show_menu(turn, prefix=turn.t("traces.kept"))
    else:
        menu.show_menu(turn, prefix=turn.t("common.stale_button"))
    return True


@router.command("xoadauvet", "clear")
async def on_command(turn: Turn) -> bool:
    """Ask before deleting the chat."""
    ask(turn)
    return True


@router.fallback
async def on_text(turn: Turn) -> bool:
    """Take a typed confirmation, or the button's label typed (with or without diacritics)."""
    awaited = turn.awaiting == AWAITING
    if awaited:
        # The confirmation is awaited only until the resident does something else.
        turn.awaiting = None
    event = turn.event
    if event.kind is not EventKind.TEXT:
        return False
    text = event.text or ""
    if awaited:
        picked = match_choice(text, [row[0] for row in _choices(turn)])
        if picked is not None:
            await on_choice(turn, picked.data.rsplit(":", 1)[1])
            return True
        return False
    catalogue = turn.services.catalogue
    labels = [Choice(catalogue.text(language, "traces.button"), "") for language in ("vi", "en")]
    if match_choice(text, labels, numbers=False) is None:
        return False
    ask(turn)
    return True


async def clear(services: Services, event: Inbound, language: str) -> None:
    """Delete the chat's recorded messages of the last 48 hours and say how it went."""
    channel = services.channel(event.channel)
    try:
        deleted, kept = await _delete(services, event)
    except Exception as error:
        log.error("Clearing traces failed: %s", type(error).__name__)
        notice = services.catalogue.text(language, "traces.failed")
        deleted, kept = 0, ["?"]
    else:
        if kept:
            notice = services.catalogue.text(
                language, "traces.partly", deleted=deleted, kept=len(kept)
            )
        else:
            notice = services.catalogue.text(language, "traces.done", count=deleted)
    if event.kind is EventKind.CHOICE:
        await channel.acknowledge(event, notice, alert=True)
    elif kept:
        # Typed, there is no button to answer: only a failure is worth a message (recorded,
        # so that the next try deletes it too).
        sent = await channel.send(event.chat, Outbound(text=notice))
        await remember(services, event.channel, event.chat, sent.message_ids)


async def _delete(services: Services, event: Inbound) -> tuple[int, list[str]]:
    """Delete what can be deleted; return how many went and the ids that stayed."""
    key, now = trace_key(services, event.channel, event.chat), services.clock()
    async with unit_of_work(services.sessions) as session:
        recorded = await traces_repo.recent_traces(
            session=session, trace_key=key, since=now - WINDOW
        )
    # The message tapped or typed goes too, recorded yet or not.
    ids = sorted({*recorded, *([event.message_id] if event.message_id else [])}, key=int)
    kept = await services.channel(event.channel).delete(event.chat, ids)
    async with unit_of_work(services.sessions) as session:
        # Older rows go as well: Telegram would refuse them, and they only wait for the purge.
        await traces_repo.forget_traces(
            session=session,
            trace_key=key,
            message_ids=[i for i in ids if i not in kept],
            until=now - WINDOW,
        )
    log.info(
        "Deleted %d of %d message(s) for %s",
        len(ids) - len(kept),
        len(ids),
        services.keyring.pseudonym(event.channel, event.chat),
    )
    return len(ids) - len(kept), kept
