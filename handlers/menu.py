"""The welcome, the main menu, hotlines, the privacy promise and the language switch."""

from __future__ import annotations

from typing import Final

from handlers.context import Turn
from handlers.events import MEDIA_KINDS, Choice, EventKind
from handlers.router import Router, callback
from storage import repositories as repo

router = Router(__name__)

NAMESPACE: Final = "m"
# «Xóa dấu vết» (handlers/traces.py); its button also shows on the receipt of a sent tip.
TRACES_NAMESPACE: Final = "x"


def menu_choices(turn: Turn) -> tuple[tuple[Choice, ...], ...]:
    """Return the big buttons of the main menu, one per row."""
    other = "en" if turn.language == "vi" else "vi"
    return (
        (Choice(turn.t("menu.tip"), callback("t", "new")),),
        (Choice(turn.t("menu.lookup"), callback("l", "start")),),
        (Choice(turn.t("menu.subscribe"), callback("s", "open")),),
        (Choice(turn.t("menu.hotlines"), callback(NAMESPACE, "hotlines")),),
        (Choice(turn.t("menu.privacy"), callback(NAMESPACE, "privacy")),),
        (Choice(turn.t(f"menu.language_{other}"), callback(NAMESPACE, f"lang-{other}")),),
    )


def traces_row(turn: Turn) -> tuple[Choice, ...]:
    """Return the row with «🧹 Xóa dấu vết»: delete this chat from the phone."""
    return (Choice(turn.t("traces.button"), callback(TRACES_NAMESPACE, "ask")),)


def privacy(turn: Turn) -> None:
    """Say what stays anonymous and what does not, with the way to clear the chat."""
    days = turn.services.settings.security.contact_retention_days
    # A channel may have its own promise (who else sees the chat there), keyed by its name.
    own = f"privacy.{turn.event.channel}"
    key = own if own in turn.services.catalogue.keys(turn.language) else "menu.privacy_text"
    can_clear = turn.services.channel(turn.event.channel).capabilities.can_delete
    rows = (traces_row(turn), *menu_choices(turn)) if can_clear else menu_choices(turn)
    turn.say(turn.t(key, contact_days=days), rows)


def hotline_lines(turn: Turn) -> str:
    """Return each ward's hotlines, one per line."""
    wards = turn.services.settings.wards
    lines: list[str] = []
    for ward in wards:
        if len(wards) > 1:
            lines.append(ward.name)
        lines += [turn.t("menu.hotline", name=h.name, phone=h.phone) for h in ward.hotlines]
    return "\n".join(lines) or turn.t("menu.no_hotlines")


def show_menu(turn: Turn, *, prefix: str | None = None) -> None:
    """Show the main menu, after an optional line saying what just happened."""
    text = "\n\n".join(part for part in (prefix, turn.t("menu.choose")) if part)
    turn.say(text, menu_choices(turn))


def welcome(turn: Turn, *, prefix: str | None = None) -> None:
    """Say what the bot is, what stays anonymous and what does not, and show the menu."""
    wards = turn.services.settings.wards
    place = wards[0].name if len(wards) == 1 else turn.t("menu.many_wards")
    body = turn.t("menu.welcome", ward=place, hotlines=hotline_lines(turn))
    turn.say("\n\n".join(part for part in (prefix, body) if part), menu_choices(turn))


@router.command("start", "help", "menu")
async def on_start(turn: Turn) -> bool:
    """Welcome the resident and show the menu."""
    welcome(turn)
    return True


@router.command("riengtu", "privacy")
async def on_privacy_command(turn: Turn) -> bool:
    """Explain what stays anonymous."""
    privacy(turn)
    return True


@router.choice(NAMESPACE)
async def on_choice(turn: Turn, value: str) -> bool:
    """Answer a main-menu button."""
    if value == "hotlines":
        turn.say(turn.t("menu.hotlines_text", hotlines=hotline_lines(turn)), menu_choices(turn))
    elif value == "privacy":
        privacy(turn)
    elif value in ("lang-vi", "lang-en"):
        turn.language = value.removeprefix("lang-")
        await repo.set_chat_state(
            session=turn.session, chat_key=turn.chat_key, now=turn.now, language=turn.language
        )
        welcome(turn)
    else:
        show_menu(turn, prefix=turn.t("common.stale_button"))
    return True


@router.fallback
async def on_idle(turn: Turn) -> bool:
    """Answer anything sent while no step is waiting: a short hint, then the menu."""
    kind = turn.event.kind
    if kind is EventKind.COMMAND:
        show_menu(turn, prefix=turn.t("common.unknown_command"))
    elif kind in MEDIA_KINDS or kind is EventKind.LOCATION:
        show_menu(turn, prefix=turn.t("menu.media_without_tip"))
    elif kind is EventKind.TEXT:
        welcome(turn)
    else:
        show_menu(turn, prefix=turn.t("common.unsupported"))
    return True
