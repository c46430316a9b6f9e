"""Monthly awareness messages: subscribe by area, change the area, unsubscribe in one tap.

A subscription is never linked to a tip: nothing here reads or writes the tip tables.
"""

from __future__ import annotations

import enum
import json
import logging
from typing import Final

from handlers import menu
from handlers.context import Turn
from handlers.events import Choice, EventKind
from handlers.router import Router, callback, parse_callback
from handlers.text import match_choice
from storage import broadcasts as store
from storage.models import Subscription

log = logging.getLogger(__name__)

router = Router(__name__)

NAMESPACE: Final = "s"
OPEN: Final = "open"
STOP: Final = "stop"
ALL_AREAS: Final = "all"
AWAITING_PREFIX: Final = "sub:"
REASON_RESIDENT: Final = "resident"

Rows = tuple[tuple[Choice, ...], ...]


class Step(enum.StrEnum):
    """Which question is on screen; short values because they travel in button data."""

    WARD = "w"
    AREA = "a"


def seal_context(chat_key: str) -> str:
    """Return the context a subscription's chat is sealed to: its own chat key."""
    return f"subscription:{chat_key}"


def unsubscribe_choice(turn: Turn) -> Choice:
    """Return the one-tap button that ends the subscription."""
    return Choice(turn.t("subscription.stop"), callback(NAMESPACE, STOP))


def _button(turn: Turn, value: str, key: str) -> Choice:
    return Choice(turn.t(key), callback(NAMESPACE, value))


def _several_wards(turn: Turn) -> bool:
    return len(turn.services.settings.wards) > 1


def _area_label(turn: Turn, area: str | None) -> str:
    return area or turn.t("subscription.area_all")


def _choices(turn: Turn, step: Step, ward_code: str) -> Rows:
    """Return the buttons of a question; typed answers are matched against the same list."""
    if step is Step.WARD:
        wards = turn.services.settings.wards
        named = [(Choice(w.name, callback(NAMESPACE, f"w:{w.code}")),) for w in wards]
        return (*named, (_button(turn, "cancel", "subscription.cancel"),))
    areas = turn.services.ward(ward_code).areas
    buttons = [
        Choice(name, callback(NAMESPACE, f"a:{ward_code}:{i}")) for i, name in enumerate(areas)
    ]
    rows = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    everywhere = _button(turn, f"a:{ward_code}:{ALL_AREAS}", "subscription.area_all")
    leave = (
        _button(turn, "back", "subscription.back")
        if _several_wards(turn)
        else _button(turn, "cancel", "subscription.cancel")
    )
    return (*rows, (everywhere,), (leave,))


def _ask(turn: Turn, step: Step, ward_code: str = "", *, prefix: str | None = None) -> None:
    """Ask a question and await its answer typed, too, for channels without buttons."""
    turn.awaiting = f"{AWAITING_PREFIX}{step}:{ward_code}"
    body = turn.t("subscription.ask_ward" if step is Step.WARD else "subscription.ask_area")
    text = "\n\n".join(part for part in (prefix, body) if part)
    turn.say(text, _choices(turn, step, ward_code))


def _settings_choices(turn: Turn) -> Rows:
    return (
        (_button(turn, "change", "subscription.change"),),
        (unsubscribe_choice(turn),),
        (_button(turn, "menu", "subscription.to_menu"),),
    )


def _show_settings(turn: Turn, subscription: Subscription) -> None:
    ward = turn.services.ward(subscription.ward_code).name
    area = _area_label(turn, subscription.area)
    turn.say(turn.t("subscription.settings", ward=ward, area=area), _settings_choices(turn))


async def _active(turn: Turn) -> Subscription | None:
    subscription = await store.get_subscription(session=turn.session, chat_key=turn.chat_key)
    return subscription if subscription is not None and subscription.active else None


def _choose_ward_or_area(turn: Turn) -> None:
    if _several_wards(turn):
        _ask(turn, Step.WARD)
    else:
        _ask(turn, Step.AREA, turn.services.settings.wards[0].code)


async def begin(turn: Turn) -> None:
    """Start a subscription, or show the settings of the one the chat already has."""
    subscription = await _active(turn)
    if subscription is not None:
        _show_settings(turn, subscription)
    else:
        _choose_ward_or_area(turn)


async def _subscribe(turn: Turn, ward_code: str, area: str | None) -> None:
    """Store the subscription with the chat sealed to it, and say what that means."""
    changing = await _active(turn) is not None
    address = json.dumps({"channel": turn.event.channel, "chat": turn.event.chat}).encode()
    sealed = turn.services.keyring.seal(address, context=seal_context(turn.chat_key))
    await store.subscribe(
        session=turn.session,
        chat_key=turn.chat_key,
        sealed_chat=sealed,
        ward_code=ward_code,
        area=area,
        language=turn.language,
        now=turn.now,
    )
    log.info("Chat %s subscribed in ward %s", turn.pseudonym, ward_code)
    turn.awaiting = None
    ward = turn.services.ward(ward_code).name
    key = "subscription.changed" if changing else "subscription.subscribed"
    turn.say(turn.t(key, ward=ward, area=_area_label(turn, area)), _settings_choices(turn))


async def unsubscribe(turn: Turn) -> None:
    """End the subscription at once and confirm it, or say there was none."""
    turn.awaiting = None
    ended = await store.unsubscribe(
        session=turn.session, chat_key=turn.chat_key, now=turn.now, reason=REASON_RESIDENT
    )
    if ended:
        log.info("Chat %s unsubscribed", turn.pseudonym)
    key = "subscription.unsubscribed" if ended else "subscription.not_subscribed"
    menu.show_menu(turn, prefix=turn.t(key))


async def _leave(turn: Turn) -> None:
    turn.awaiting = None
    subscription = await _active(turn)
    if subscription is not None:
        _show_settings(turn, subscription)
    else:
        menu.show_menu(turn, prefix=turn.t("subscription.cancelled"))


async def _answer(turn: Turn, value: str) -> bool:
    """Apply a choice; return False when it names no ward or area there is."""
    kind, _, rest = value.partition(":")
    codes = {ward.code for ward in turn.services.settings.wards}
    if kind == "w" and rest in codes:
        _ask(turn, Step.AREA, rest)
        return True
    ward_code, _, pick = rest.partition(":")
    if kind != "a" or ward_code not in codes:
        return False
    areas = turn.services.ward(ward_code).areas
    if pick == ALL_AREAS:
        await _subscribe(turn, ward_code, None)
    elif pick.isascii() and pick.isdigit() and int(pick) < len(areas):
        await _subscribe(turn, ward_code, areas[int(pick)])
    else:
        return False
    return True


@router.choice(NAMESPACE)
async def on_choice(turn: Turn, value: str) -> bool:
    """Act on a subscription button."""
    if value == OPEN:
        await begin(turn)
    elif value == "change":
        _choose_ward_or_area(turn)
    elif value == STOP:
        await unsubscribe(turn)
    elif value == "back":
        _ask(turn, Step.WARD)
    elif value == "cancel":
        await _leave(turn)
    elif value == "menu":
        menu.show_menu(turn)
    elif not await _answer(turn, value):
        menu.show_menu(turn, prefix=turn.t("common.stale_button"))
    return True


@router.command("dangky", "subscribe")
async def on_subscribe_command(turn: Turn) -> bool:
    """Start a subscription from a typed command."""
    await begin(turn)
    return True


@router.command("huydangky", "unsubscribe", "stop")
async def on_unsubscribe_command(turn: Turn) -> bool:
    """Unsubscribe at once: no question asked."""
    await unsubscribe(turn)
    return True


@router.fallback
async def on_input(turn: Turn) -> bool:
    """Take a typed answer to the question on screen: its number, or its label sans accents."""
    awaited = turn.awaiting or ""
    if not awaited.startswith(AWAITING_PREFIX):
        return False
    step_code, _, ward_code = awaited.removeprefix(AWAITING_PREFIX).partition(":")
    step = Step(step_code)
    if step is Step.AREA and ward_code not in {w.code for w in turn.services.settings.wards}:
        # The configuration changed since the question was asked.
        turn.awaiting = None
        return False
    rows = _choices(turn, step, ward_code)
    picked = (
        match_choice(turn.event.text or "", [c for row in rows for c in row])
        if turn.event.kind is EventKind.TEXT
        else None
    )
    if picked is None:
        _ask(turn, step, ward_code, prefix=turn.t("common.pick_a_button"))
        return True
    parsed = parse_callback(picked.data)
    assert parsed is not None
    return await on_choice(turn, parsed[1])
