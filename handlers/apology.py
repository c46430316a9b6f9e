"""What a person is told when their turn failed, or when a tap finds nothing to answer it.

Handed to the dispatcher by bot/app.py as middlewares (handlers/middleware.py).
"""

from __future__ import annotations

from handlers import menu
from handlers.context import Turn
from handlers.events import EventKind, Outbound


def apologise(turn: Turn) -> None:
    """Say the turn failed, where someone is waiting for an answer; the draft is unchanged."""
    event = turn.event
    if event.private:
        menu.show_menu(turn, prefix=turn.t("common.error"))
    elif event.kind is EventKind.CHOICE:
        turn.notify(turn.t("common.error_group"), alert=True)
    elif event.kind is EventKind.COMMAND or event.reply_to is not None:
        # Something addressed to the bot in a group (a command, a reply to a prompt or a
        # card): say it failed, under it. Chatter that merely passed by gets nothing.
        reply = Outbound(text=turn.t("common.error_group"), reply_to=event.message_id)
        turn.send(reply)


def stale_choice(turn: Turn) -> None:
    """Answer a resident's tap on a button nothing takes any more with the menu."""
    menu.show_menu(turn, prefix=turn.t("common.stale_button"))
